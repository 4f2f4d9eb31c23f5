// Package nsfilter decides which namespaces a sync includes, the way
// mongosync's includeNamespaces/excludeNamespaces do: a pattern is "db.coll",
// "db.*" (every collection of db), "db" (the same), or "/regex/" matched
// against "db.coll". A namespace is included when it matches an include
// pattern (or there are none) and no exclude pattern. The system databases
// admin, local and config and logbridge's own __logbridge are never included.
//
//	f, err := nsfilter.New([]string{"shop.*"}, []string{"/\\.tmp_/"})
//	f.Match("shop", "orders") // true
package nsfilter
