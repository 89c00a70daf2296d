// Package repolock keeps two processes from opening the same MESH repo: the
// first takes an exclusive lock on DIR/repo.lock and writes its pid there; the
// second gets an error that names that pid.
package repolock
