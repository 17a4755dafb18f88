package httpapi

import (
	"errors"
	"io"
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/navad/navad/campaigns"
)

// body is a request body read through a size limit that remembers the
// first read error, so that a parser's complaint about a body cut short by
// the limit, a slow client or a dropped connection is reported as what it
// is (413, or a 400 that says the body could not be read) rather than as
// malformed input.
type body struct {
	r   io.Reader
	err error
}

// limitBody returns c's body limited to limit bytes.
func limitBody(c *gin.Context, limit int64) *body {
	return &body{r: http.MaxBytesReader(c.Writer, c.Request.Body, limit)}
}

// Read implements io.Reader.
func (b *body) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	if err != nil && err != io.EOF && b.err == nil {
		b.err = err
	}
	return n, err
}

// fail returns the error to answer for a parse that failed with err.
func (b *body) fail(err error) error {
	if b.err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(b.err, &tooBig) {
			return campaigns.Errorf(campaigns.TooLarge, "the body is larger than %d bytes", tooBig.Limit)
		}
		if !errors.Is(b.err, io.ErrUnexpectedEOF) {
			return campaigns.Errorf(campaigns.Invalid, "the body could not be read to its end")
		}
	}
	return bodyError(err)
}
