// Package corpus provides real English technical text for benchmarks and
// tests: the doc comments of the Go standard library and of the Go module
// cache, split into paragraphs, cleaned and de-duplicated.
//
// Nothing is invented: every [Doc] is a paragraph (or, for very long
// paragraphs, a group of consecutive sentences) written by a person. The order
// of the full corpus is deterministic for a given GOROOT and module cache, and
// so are [Load] and [Queries] for a given seed.
//
// Parsing every doc comment takes a few seconds, so the parsed corpus is kept
// in a cache file under os.UserCacheDir()/mesh-corpus, keyed by the Go version
// and the set of source trees; a repeat run reads that file instead. Set
// MESH_CORPUS_NOCACHE=1 to bypass it.
//
// The package is safe for concurrent use.
package corpus
