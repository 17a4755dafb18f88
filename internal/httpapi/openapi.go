package httpapi

import (
	_ "embed"
	"fmt"
	"net/http"
	"sync"

	"github.com/gin-gonic/gin"
	"github.com/goccy/go-yaml"
)

// openAPIYAML is the API's OpenAPI 3 document, written in YAML for people
// and served as JSON.
//
//go:embed openapi.yaml
var openAPIYAML []byte

// OpenAPIYAML returns the OpenAPI 3 document as written.
func OpenAPIYAML() []byte { return openAPIYAML }

// OpenAPI returns the OpenAPI 3 document as JSON, as GET /openapi.json
// serves it. It is converted once; keys keep the order they are written in.
func OpenAPI() ([]byte, error) { return openAPIJSON() }

var openAPIJSON = sync.OnceValues(func() ([]byte, error) {
	b, err := yaml.YAMLToJSON(openAPIYAML)
	if err != nil {
		return nil, fmt.Errorf("openapi.yaml: %w", err)
	}
	return b, nil
})

// openAPIHandler serves the document; New has checked that it converts.
func openAPIHandler(doc []byte) gin.HandlerFunc {
	return func(c *gin.Context) {
		c.Data(http.StatusOK, "application/json; charset=utf-8", doc)
	}
}
