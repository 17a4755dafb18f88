// Package baseline is the bare gin server that load tests compare navad
// against: one route answering a small JSON object, no middleware. Driven
// with the same requests as navad on the same machine, it measures the most
// any gin handler can do there, so that navad's throughput can be given as a
// share of it.
package baseline

import (
	"net/http"

	"github.com/gin-gonic/gin"
)

// answer is the small JSON object every request gets: about the size of
// navad's answer to a search that triggers nothing.
type answer struct {
	RequestID string     `json:"request_id"`
	Ads       []struct{} `json:"ads"`
}

// Handler returns the gin engine: GET /v1/ads (whatever the query string
// and headers) and GET /readyz.
func Handler() http.Handler {
	gin.SetMode(gin.ReleaseMode)
	g := gin.New()
	a := answer{RequestID: "baseline", Ads: []struct{}{}}
	g.GET("/v1/ads", func(c *gin.Context) { c.JSON(http.StatusOK, a) })
	g.GET("/readyz", func(c *gin.Context) { c.JSON(http.StatusOK, gin.H{"status": "ready"}) })
	return g
}
