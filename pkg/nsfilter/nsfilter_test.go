package nsfilter

import "testing"

func TestMatch(t *testing.T) {
	tests := []struct {
		name             string
		include, exclude []string
		db, coll         string
		want             bool
	}{
		{name: "everything", db: "shop", coll: "orders", want: true},
		{name: "system db", db: "admin", coll: "users", want: false},
		{name: "own metadata", db: "__logbridge", coll: "applied_ddl", want: false},
		{name: "system collection", db: "shop", coll: "system.views", want: false},
		{name: "db star", include: []string{"shop.*"}, db: "shop", coll: "orders", want: true},
		{name: "db only", include: []string{"shop"}, db: "shop", coll: "orders", want: true},
		{name: "other db", include: []string{"shop.*"}, db: "crm", coll: "orders", want: false},
		{name: "exact", include: []string{"shop.orders"}, db: "shop", coll: "carts", want: false},
		{name: "exclude wins", include: []string{"shop.*"}, exclude: []string{"shop.carts"}, db: "shop", coll: "carts", want: false},
		{name: "regex", include: []string{`/^shop\.o/`}, db: "shop", coll: "orders", want: true},
		{name: "regex exclude", exclude: []string{`/tmp_/`}, db: "shop", coll: "tmp_1", want: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := New(tt.include, tt.exclude)
			if err != nil {
				t.Fatal(err)
			}
			if got := f.Match(tt.db, tt.coll); got != tt.want {
				t.Fatalf("Match(%s.%s) got %v, want %v", tt.db, tt.coll, got, tt.want)
			}
		})
	}
}

func TestBadPatterns(t *testing.T) {
	for _, p := range []string{"/([/", ".coll"} {
		if _, err := New([]string{p}, nil); err == nil {
			t.Errorf("New(%q) got nil error, want one", p)
		}
	}
}
