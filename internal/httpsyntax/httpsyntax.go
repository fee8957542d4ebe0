// Package httpsyntax holds the small pieces of HTTP/1.1's syntax that both
// of cutover's parsers need: the request head's (proxy/front) and the
// response head's (proxy).
package httpsyntax

// TrimOWS trims the optional whitespace (spaces and tabs, RFC 9110 section
// 5.6.3) around s, as strings.Trim(s, " \t") does, in about a fifth of its
// time: it builds no cutset.
func TrimOWS(s string) string {
	for len(s) > 0 && (s[0] == ' ' || s[0] == '\t') {
		s = s[1:]
	}
	for len(s) > 0 && (s[len(s)-1] == ' ' || s[len(s)-1] == '\t') {
		s = s[:len(s)-1]
	}
	return s
}
