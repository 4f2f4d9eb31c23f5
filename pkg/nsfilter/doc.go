// Package nsfilter decides which namespaces a sync includes: the source
// connector copies and streams them, the verifier compares them.
//
// Patterns (from --include / --exclude, comma-separated):
//
//	db.coll     exactly that collection
//	db.*        every collection of database db
//	*           every namespace
//	/regex/     a Go regular expression matched against "db.coll"
//
// A namespace is selected when it matches an include pattern (or no include
// pattern is given) and matches no exclude pattern. The databases admin,
// local and config, the tool's own metadata databases (names starting with
// "__logbridge") and system collections ("system.*") are never selected,
// whatever the patterns say.
//
// The control API's includeNamespaces entries are compiled (package control)
// into structured Rules instead (FromRules): names compare exactly, and each
// regular expression is matched against its own name part only.
//
// A Filter is immutable and safe for concurrent use:
//
//	f, err := nsfilter.New([]string{"shop.*", "/^crm\\.acc/"}, []string{"shop.tmp"})
//	if f.Match("shop", "orders") { ... }
package nsfilter
