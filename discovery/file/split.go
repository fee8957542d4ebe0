package file

import (
	"bytes"
	"unicode/utf8"
)

// chunk is the text of one entry of the services mapping, cut out of a file
// by splitServices.
type chunk struct {
	name string // the service's key, as written
	text []byte // its lines, from the key's to the next key's
	line int    // the line of the key, from 1
}

// splitServices cuts a file into the entries of its services mapping,
// without parsing YAML. It reports false unless the file is plainly of the
// shape
//
//	# comments and blank lines
//	services:          # a comment
//	  web:             # a key of letters, digits, '.', '_', '-', then ':'
//	    host: a.com    # lines indented deeper, comments, blank lines
//	# comments
//	  api: {host: b.com}
//
// that is: comments and blank lines, the line "services:", then lines that
// are blank, comments, a key at the indentation of the first key, or
// indented deeper; nothing else. Every byte must be printable ASCII, a line
// feed, or a printable character of UTF-8 that YAML does not take for a line
// break. Whether each entry is well-formed YAML on its own is left to its
// parse (see reparser): splitServices only makes sure that every key of the
// services mapping starts a chunk.
func splitServices(data []byte) ([]chunk, bool) {
	if !plainText(data) {
		return nil, false
	}
	var chunks []chunk
	var s splitter
	for off, line := 0, 1; off < len(data); line++ {
		end, next := len(data), len(data) // of the line without and with its line feed
		if i := bytes.IndexByte(data[off:], '\n'); i >= 0 {
			end, next = off+i, off+i+1
		}
		switch name, ok := s.next(data[off:end]); {
		case !ok:
			return nil, false
		case name != "":
			if n := len(chunks); n > 0 {
				chunks[n-1].text = chunks[n-1].text[:off-s.start]
			}
			chunks = append(chunks, chunk{name: name, text: data[off:], line: line})
			s.start = off
		}
		off = next
	}
	return chunks, s.services
}

// splitter is the state of splitServices between two lines.
type splitter struct {
	services bool // the services line was seen
	indent   int  // of the service keys; 0 before the first
	start    int  // offset of the last chunk
}

// next classifies one line (without its line feed): it returns the name of
// the service whose key it is, or "" for another line of the shape, or
// false for a line out of shape.
func (s *splitter) next(line []byte) (string, bool) {
	n := len(line) - len(bytes.TrimLeft(line, " "))
	switch {
	case n == len(line) || line[n] == '#':
		return "", true // blank or a comment
	case !s.services:
		s.services = isServicesLine(line)
		return "", s.services
	case n > s.indent && s.indent > 0:
		return "", true // inside the last service
	case n == 0 || s.indent > 0 && n != s.indent:
		return "", false
	}
	s.indent = n
	name := keyName(line[n:])
	return name, name != ""
}

// isServicesLine reports whether line is "services:", maybe with spaces and
// a comment after it.
func isServicesLine(line []byte) bool {
	rest, ok := bytes.CutPrefix(line, []byte("services:"))
	trimmed := bytes.TrimLeft(rest, " ")
	return ok && (len(trimmed) == 0 || trimmed[0] == '#' && len(trimmed) < len(rest))
}

// keyName returns the key at the start of s when it is a plain key of
// letters, digits, '.', '_' and '-' followed by ':' and a space or the end
// of the line, else "".
func keyName(s []byte) string {
	i := 0
	for i < len(s) && isNameByte(s[i]) {
		i++
	}
	if i == 0 || i == len(s) || s[i] != ':' || i+1 < len(s) && s[i+1] != ' ' {
		return ""
	}
	return string(s[:i])
}

func isNameByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
		c == '.' || c == '_' || c == '-'
}

// plainText reports whether data holds only line feeds, printable ASCII and
// printable UTF-8 characters that YAML takes neither for a line break nor
// for a byte order mark: nothing that would make YAML count lines or
// indentation otherwise than splitServices, nor fail on the whole file
// where a chunk alone would not (tabs, carriage returns and other control
// characters are out too).
func plainText(data []byte) bool {
	for i := 0; i < len(data); {
		c := data[i]
		if c < utf8.RuneSelf {
			if c != '\n' && (c < ' ' || c > '~') {
				return false
			}
			i++
			continue
		}
		r, size := utf8.DecodeRune(data[i:])
		if !printableRune(r) || r == utf8.RuneError && size == 1 {
			return false
		}
		i += size
	}
	return true
}

// printableRune reports whether r, not ASCII, is printable for YAML and no
// line break (NEL, LS, PS) or byte order mark.
func printableRune(r rune) bool {
	switch {
	case r == 0x2028, r == 0x2029, r == 0xFEFF:
		return false
	case r >= 0xA0 && r <= 0xD7FF, r >= 0xE000 && r <= 0xFFFD, r >= 0x10000 && r <= 0x10FFFF:
		return true
	}
	return false
}
