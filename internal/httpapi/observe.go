package httpapi

import (
	"time"

	"github.com/gin-gonic/gin"
)

// instrument records every request in the server's metrics, labelled with
// the route pattern (gin's FullPath: "/v1/campaigns/:id"), never the raw
// path, so that IDs, tokens and path tricks cannot multiply the series. It
// records in a defer so that a handler aborted by a panic still leaves the
// in-flight gauge.
func (s *Server) instrument(c *gin.Context) {
	start := time.Now()
	s.Metrics.RequestStarted()
	defer func() {
		route := c.FullPath()
		if route == "" {
			route = "unmatched"
		}
		s.Metrics.ObserveRequest(route, c.Request.Method, c.Writer.Status(), time.Since(start))
	}()
	c.Next()
}
