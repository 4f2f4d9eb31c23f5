package control

import (
	"fmt"
	"regexp"
	"strings"
	"unicode/utf8"
)

// CompileRegex translates a mongosync {pattern, options} regular expression
// into a Go (RE2) one with MongoDB's $regex semantics: it matches anywhere
// in the name unless the pattern anchors itself.
//
// Options: i, m and s become the RE2 flags of the same name; x (extended)
// has no RE2 flag, so its whitespace and #-comments outside character
// classes are stripped here, as PCRE would ignore them; u is ignored (Go
// matches UTF-8 always). Any other option is refused by name.
//
// PCRE constructs that RE2 cannot express (lookaround, backreferences,
// atomic groups, possessive quantifiers, \G, conditionals, recursion...)
// are refused by name rather than left to a generic parse error, so the
// user knows what to rewrite. field names the request field in errors.
func CompileRegex(field string, r *Regex) (*regexp.Regexp, error) {
	refuse := func(format string, a ...any) error {
		return fmt.Errorf("%s %q: %s", field, r.Pattern, fmt.Sprintf(format, a...))
	}
	// JSON bodies always decode to valid UTF-8, but a log written by other
	// means may not hold it; RE2 would refuse it with a garbled message.
	if !utf8.ValidString(r.Pattern) {
		return nil, fmt.Errorf("%s %+q: the pattern is not valid UTF-8: write it as UTF-8 text", field, r.Pattern)
	}
	var flags string
	extended := false
	for _, o := range r.Options {
		switch o {
		case 'i', 'm', 's':
			if !strings.ContainsRune(flags, o) {
				flags += string(o)
			}
		case 'x':
			extended = true
		case 'u':
		default:
			return nil, refuse("option %q is not supported: use i, m, s, x or u", string(o))
		}
	}
	pattern := r.Pattern
	if extended {
		pattern = stripExtended(pattern)
	}
	if name, hint := unsupported(pattern); name != "" {
		return nil, refuse("%s is not supported (RE2 syntax): %s", name, hint)
	}
	if flags != "" {
		pattern = "(?" + flags + ")" + pattern
	}
	re, err := regexp.Compile(pattern)
	if err != nil {
		return nil, refuse("not a valid regular expression in RE2 syntax (%v): see https://github.com/google/re2/wiki/Syntax", strings.TrimPrefix(err.Error(), "error parsing regexp: "))
	}
	return re, nil
}

// stripExtended removes what the x option makes insignificant: unescaped
// whitespace and #-comments (to the end of the line) outside character
// classes. An escaped space or # stays, as a literal.
func stripExtended(p string) string {
	var b strings.Builder
	inClass := false
	for i := 0; i < len(p); i++ {
		c := p[i]
		switch {
		case c == '\\' && i+1 < len(p) && p[i+1] == 'Q':
			// \Q...\E quotes literally, whitespace included.
			end := strings.Index(p[i:], `\E`)
			if end < 0 {
				end = len(p) - i
			} else {
				end += 2
			}
			b.WriteString(p[i : i+end])
			i += end - 1
		case c == '\\' && i+1 < len(p):
			b.WriteByte(c)
			b.WriteByte(p[i+1])
			i++
		case inClass:
			if c == ']' {
				inClass = false
			}
			b.WriteByte(c)
		case c == '[':
			inClass = true
			b.WriteByte(c)
			// A ] first in a class (after an optional ^) is a literal.
			if i+1 < len(p) && p[i+1] == '^' {
				b.WriteByte('^')
				i++
			}
			if i+1 < len(p) && p[i+1] == ']' {
				b.WriteByte(']')
				i++
			}
		case c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v':
		case c == '#':
			for i+1 < len(p) && p[i+1] != '\n' {
				i++
			}
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

// groupConstructs are the PCRE group openings after "(?" that RE2 lacks.
var groupConstructs = []struct{ prefix, name, hint string }{
	{"=", "lookahead (?=...)", "rewrite without it"},
	{"!", "negative lookahead (?!...)", "rewrite without it (list what to match, or exclude the rest with excludeNamespaces)"},
	{"<=", "lookbehind (?<=...)", "rewrite without it"},
	{"<!", "negative lookbehind (?<!...)", "rewrite without it (or exclude the rest with excludeNamespaces)"},
	{">", "atomic group (?>...)", "use a plain group (?:...)"},
	{"(", "conditional (?(...)...)", "write the alternatives out with |"},
	{"#", "comment (?#...)", "remove it (or use the x option's # comments)"},
	{"|", "branch reset (?|...)", "use a plain group (?:...)"},
	{"R", "recursion (?R)", "rewrite without it"},
	{"&", "subroutine call (?&name)", "repeat the group's pattern instead"},
	{"P>", "subroutine call (?P>name)", "repeat the group's pattern instead"},
	{"P=", "named backreference (?P=name)", "rewrite without it"},
	{"+", "relative subroutine call (?+N)", "repeat the group's pattern instead"},
	{"-1", "relative subroutine call (?-N)", "repeat the group's pattern instead"},
}

// unsupported scans p for a PCRE construct RE2 cannot express and returns
// its name and what to do instead, or "" when there is none. It tracks
// escapes, \Q...\E quoting and character classes, where these characters
// mean themselves.
func unsupported(p string) (name, hint string) {
	quantified := false // the previous token was a quantifier
	for i := 0; i < len(p); i++ {
		c := p[i]
		wasQuantified := quantified
		quantified = false
		switch c {
		case '\\':
			if i+1 >= len(p) {
				return "", "" // regexp reports the trailing backslash
			}
			d := p[i+1]
			i++
			switch {
			case d >= '1' && d <= '9':
				return `backreference \` + string(d), `rewrite without it (RE2 has no backreferences); for an octal character code write \0` + string(d) + ` or \x{..}`
			case d == 'k' || d == 'g':
				return `backreference or subroutine \` + string(d), "rewrite without it (RE2 has no backreferences)"
			case d == 'G':
				return `\G (end of the previous match)`, "anchor with ^ instead"
			case d == 'Z':
				return `\Z (end of text or before a final newline)`, `use \z or $`
			case d == 'K':
				return `\K (reset of the match start)`, "rewrite without it"
			case d == 'Q':
				if end := strings.Index(p[i+1:], `\E`); end >= 0 {
					i += end + 2
				} else {
					i = len(p)
				}
			}
		case '[':
			i = skipClass(p, i)
		case '(':
			if i+1 < len(p) && p[i+1] == '*' {
				return "backtracking control verb (*...)", "rewrite without it"
			}
			if i+1 < len(p) && p[i+1] == '?' {
				rest := p[i+2:]
				for _, g := range groupConstructs {
					if strings.HasPrefix(rest, g.prefix) {
						return g.name, g.hint
					}
				}
				if rest != "" && (rest[0] >= '0' && rest[0] <= '9') {
					return "subroutine call (?N)", "repeat the group's pattern instead"
				}
				i++ // the ? opens group syntax, it quantifies nothing
			}
		case '*', '+', '?':
			if c == '+' && wasQuantified {
				return "possessive quantifier (" + p[i-1:i+1] + ")", "drop the trailing + (RE2 never backtracks, so the plain quantifier is equivalent)"
			}
			quantified = c != '?' || !wasQuantified // "*?" is lazy, not a new quantifier
		case '{':
			if n := countedRepeat(p[i:]); n > 0 {
				i += n - 1
				quantified = true
			}
		}
	}
	return "", ""
}

// skipClass returns the index of the ] closing the class opened at p[i].
func skipClass(p string, i int) int {
	j := i + 1
	if j < len(p) && p[j] == '^' {
		j++
	}
	if j < len(p) && p[j] == ']' {
		j++
	}
	for ; j < len(p); j++ {
		switch {
		case p[j] == '\\':
			j++
		case p[j] == '[' && j+1 < len(p) && p[j+1] == ':':
			if end := strings.Index(p[j:], ":]"); end >= 0 {
				j += end + 1
			}
		case p[j] == ']':
			return j
		}
	}
	return len(p)
}

// countedRepeat returns the length of a {n}, {n,} or {n,m} at the start of
// s, or 0 when s does not start with one (a literal brace).
func countedRepeat(s string) int {
	m := countedRe.FindStringIndex(s)
	if m == nil {
		return 0
	}
	return m[1]
}

var countedRe = regexp.MustCompile(`^\{[0-9]+(?:,[0-9]*)?\}`)
