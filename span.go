package dojob

// span is the part of a remote file one request asks for.
type span struct {
	off, end int64 // end is inclusive; -1 means to the end of the file
	ranged   bool  // the request carries a Range header
	whole    bool  // the span is the whole file
}

// nextSpanLocked maps the bytes already in f's temporary file to the next
// remote span, or reports that the file is complete.
func (f *file) nextSpanLocked() (s span, complete bool) {
	have := f.done.Load()
	if f.Spans != nil {
		// In segments: the first gap, asked for exactly.
		pos := int64(0)
		for _, sp := range f.Spans {
			if sp[0] > pos {
				break
			}
			pos = max(pos, sp[1])
		}
		if pos >= f.Size {
			return s, true
		}
		end := f.Size
		for _, sp := range f.Spans {
			if sp[0] > pos {
				end = sp[0]
				break
			}
		}
		return span{off: pos, end: end - 1, ranged: true}, false
	}
	if f.Ranges == nil {
		if f.Size != SizeUnknown && have >= f.Size {
			return s, true
		}
		return span{off: have, end: -1, ranged: have > 0, whole: have == 0}, false
	}
	pos := have
	for _, r := range f.Ranges {
		l := r.Length
		if l == LengthToEOF {
			if f.RemoteSize == SizeUnknown {
				return span{off: r.Offset + pos, end: -1, ranged: true, whole: r.Offset+pos == 0 && len(f.Ranges) == 1}, false
			}
			l = max(f.RemoteSize-r.Offset, 0)
		}
		if pos < l {
			end := r.Offset + r.Length - 1
			if r.Length == LengthToEOF {
				end = -1
			}
			return span{off: r.Offset + pos, end: end, ranged: true, whole: r.Offset+pos == 0 && r.Length == LengthToEOF && len(f.Ranges) == 1}, false
		}
		pos -= l
	}
	return s, true
}
