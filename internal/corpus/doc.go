// Package corpus provides real English technical text for benchmarks and
// tests, the same on every machine that builds the same commit of this
// repository with the same Go release.
//
// The corpus is made of two parts, in this order:
//
//  1. The paragraphs: the doc comments and other comments of the Go source
//     tree of the Go release in use (GOROOT/src: the standard library and the
//     toolchain), then of exactly the modules that go.mod requires, at the
//     versions it pins and go.sum checksums (the set `go mod download` fetches;
//     the few further go.sum entries, test dependencies of dependencies that
//     no build fetches, are left out), read from the module cache. They are
//     split into paragraphs (very long ones into groups of consecutive
//     sentences), cleaned (code, licences and URLs dropped) and de-duplicated.
//     Nothing else in the module cache is read: other modules and other
//     versions make no difference, and a missing module is an error that
//     names it and says to run `go mod download`.
//  2. The generated docs, which bring the corpus to 1,200,000 docs: two to six
//     real sentences of one source file, in their order (mostly consecutive,
//     sometimes skipping one to three), drawn by a fixed-seed generator, each
//     no longer than a real paragraph and distinct from every other doc.
//
// Every word was written by a person; only the generated docs' choice of
// sentences is the machine's. The vocabulary is that of the paragraphs (about
// 100,000 of them), so a million docs have fewer distinct terms than a
// million independent texts would. Each Doc has an ID derived from its
// content ("d…" for a paragraph, "g…" for a generated doc), unique in the
// corpus.
//
// [Corpus.Hash] is a SHA-256 of the corpus' description (format, Go release,
// modules and their go.sum checksums) and of every doc in order: two machines
// whose benchmarks print the same hash ran on the same docs. [Load] samples
// docs without replacement with a seed, and [Queries] makes search queries
// from docs with a seed; both are deterministic.
//
// Parsing the comments takes a few seconds, so the paragraphs are kept in a
// cache file under os.UserCacheDir()/mesh-corpus, keyed by the description
// and the directories read; a repeat run reads that file instead, then
// generates the rest (a few seconds for the 1,200,000 docs, in about 100 MB).
// Set MESH_CORPUS_NOCACHE=1 to bypass the cache.
//
// The package is safe for concurrent use.
package corpus
