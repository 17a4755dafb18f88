// Package apicheck holds navad's API to its OpenAPI document in tests: a
// Checker validates real HTTP exchanges with kin-openapi, so that the
// document cannot drift from the code. Only tests import it.
//
// The checker is stricter than the published document in one way: every
// object schema that lists properties and says nothing about others is
// closed, so a field the server sends but the document does not list fails
// the check. The published document stays open, because clients must
// tolerate new optional fields (API.md).
package apicheck

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/legacy"

	"github.com/navad/navad/internal/httpapi"
)

func init() {
	// Store uploads may be GeoJSON; kin-openapi knows only plain JSON.
	openapi3filter.RegisterBodyDecoder("application/geo+json", openapi3filter.JSONBodyDecoder)
	openapi3filter.RegisterBodyDecoder("application/merge-patch+json", openapi3filter.JSONBodyDecoder)
	openapi3filter.RegisterBodyEncoder("application/merge-patch+json", func(body any) ([]byte, error) { return json.Marshal(body) })
	// Bodies the document describes as strings: uploads of
	// application/csv, which the server reads as text/csv, and the
	// dashboard's page.
	text := func(r io.Reader, _ http.Header, _ *openapi3.SchemaRef, _ openapi3filter.EncodingFn) (any, error) {
		b, err := io.ReadAll(r)
		return string(b), err
	}
	openapi3filter.RegisterBodyDecoder("application/csv", text)
	openapi3filter.RegisterBodyDecoder("text/html", text)
}

// Checker validates exchanges against the document. Safe for concurrent
// use.
type Checker struct {
	doc    *openapi3.T
	router routers.Router
	errors *openapi3.Schema
}

// Load parses, validates and closes the document the server serves.
func Load() (*Checker, error) {
	raw, err := httpapi.OpenAPI()
	if err != nil {
		return nil, err
	}
	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromData(raw)
	if err != nil {
		return nil, fmt.Errorf("load openapi: %w", err)
	}
	if err := doc.Validate(context.Background()); err != nil {
		return nil, fmt.Errorf("openapi document: %w", err)
	}
	closeObjects(doc)
	doc.Servers = nil // match any host: tests use httptest's and loopback ports
	router, err := legacy.NewRouter(doc)
	if err != nil {
		return nil, fmt.Errorf("openapi router: %w", err)
	}
	errRef := doc.Components.Schemas["Error"]
	if errRef == nil || errRef.Value == nil {
		return nil, errors.New("openapi document: no Error schema")
	}
	return &Checker{doc: doc, router: router, errors: errRef.Value}, nil
}

// Doc returns the loaded (closed) document.
func (c *Checker) Doc() *openapi3.T { return c.doc }

// Check validates one exchange: the response always, and the request too
// when the server accepted it (2xx), since a request the server takes must
// be one the document allows. reqBody is the body that was sent.
//
// A response without X-Request-Id was written by Go's HTTP server itself
// (431, or 400 for a malformed request line), not by navad, and is not
// checked. A path or method the document does not have must be answered
// with the API's error body and 404 or 405.
func (c *Checker) Check(req *http.Request, reqBody []byte, status int, header http.Header, body []byte) error {
	if header.Get("X-Request-Id") == "" {
		return nil
	}
	switch req.Method {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
		http.MethodDelete, http.MethodOptions, http.MethodTrace, http.MethodConnect:
	default: // kin-openapi knows only the standard methods
		if status != http.StatusNotFound && status != http.StatusMethodNotAllowed {
			return fmt.Errorf("method %q answered %d", req.Method, status)
		}
		return c.errorBody(header, body)
	}
	route, params, err := c.router.FindRoute(req)
	var re *routers.RouteError
	if err != nil && !errors.As(err, &re) {
		return err
	}
	// The router takes /v1/ads/ for /v1/ads; the document and the server
	// do not. It may also take /dashboard/, which the document has, for
	// /dashboard, which it has too: the path as written wins.
	if err == nil && strings.HasSuffix(req.URL.Path, "/") && !strings.HasSuffix(route.Path, "/") {
		if item := c.doc.Paths.Value(req.URL.Path); item != nil && item.GetOperation(req.Method) != nil {
			route = &routers.Route{Spec: c.doc, Path: req.URL.Path, PathItem: item, Method: req.Method, Operation: item.GetOperation(req.Method)}
			params = map[string]string{}
		}
	}
	if err != nil || strings.HasSuffix(req.URL.Path, "/") && !strings.HasSuffix(route.Path, "/") {
		if status != http.StatusNotFound && status != http.StatusMethodNotAllowed {
			return fmt.Errorf("%s %s is not in the document, yet answered %d", req.Method, req.URL.Path, status)
		}
		return c.errorBody(header, body)
	}
	in := c.requestInput(req, reqBody, route, params)
	if status >= 200 && status < 300 {
		if err := openapi3filter.ValidateRequest(context.Background(), in); err != nil {
			return fmt.Errorf("the server accepted (%d) a request the document rejects: %w", status, err)
		}
	}
	out := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: in,
		Status:                 status,
		Header:                 header,
		Options:                in.Options,
	}
	out.SetBodyBytes(body)
	if err := openapi3filter.ValidateResponse(context.Background(), out); err != nil {
		return fmt.Errorf("response %d: %w", status, err)
	}
	return nil
}

// Request validates a request alone against the document: nil when the
// document allows it. Tests use it to hold the server's validation to the
// document's in both directions (what the server refuses, the document must
// forbid).
func (c *Checker) Request(req *http.Request, reqBody []byte) error {
	route, params, err := c.router.FindRoute(req)
	if err != nil {
		return err
	}
	return openapi3filter.ValidateRequest(context.Background(), c.requestInput(req, reqBody, route, params))
}

// requestInput is the validation input of req, whose body was reqBody.
func (c *Checker) requestInput(req *http.Request, reqBody []byte, route *routers.Route, params map[string]string) *openapi3filter.RequestValidationInput {
	// Copy the request so the body can be read again.
	r := req.Clone(req.Context())
	r.Body = io.NopCloser(bytes.NewReader(reqBody))
	if len(reqBody) > 0 && r.Header.Get("Content-Type") == "" {
		// What the server assumes: JSON, unless the body starts with the
		// byte order mark a spreadsheet writes before CSV.
		ct := "application/json"
		if bytes.HasPrefix(bytes.TrimLeft(reqBody, " \t\r\n"), []byte{0xEF, 0xBB, 0xBF}) {
			ct = "text/csv"
		}
		r.Header.Set("Content-Type", ct)
	}
	return &openapi3filter.RequestValidationInput{
		Request:    r,
		PathParams: params,
		Route:      route,
		Options: &openapi3filter.Options{
			AuthenticationFunc:    openapi3filter.NoopAuthenticationFunc,
			IncludeResponseStatus: true,
			MultiError:            true,
		},
	}
}

func (c *Checker) errorBody(header http.Header, body []byte) error {
	mt, _, _ := mime.ParseMediaType(header.Get("Content-Type"))
	if mt != "application/json" {
		return fmt.Errorf("error answer of type %q, want application/json", mt)
	}
	var v any
	if err := json.Unmarshal(body, &v); err != nil {
		return fmt.Errorf("error answer is not JSON: %w", err)
	}
	if err := c.errors.VisitJSON(v); err != nil {
		return fmt.Errorf("error answer: %w", err)
	}
	return nil
}

// closeObjects sets additionalProperties: false on every object schema
// that lists properties and leaves additionalProperties unsaid.
func closeObjects(doc *openapi3.T) {
	seen := map[*openapi3.Schema]bool{}
	var walk func(*openapi3.SchemaRef)
	walk = func(ref *openapi3.SchemaRef) {
		if ref == nil || ref.Value == nil || seen[ref.Value] {
			return
		}
		s := ref.Value
		seen[s] = true
		if len(s.Properties) > 0 && s.AdditionalProperties.Has == nil && s.AdditionalProperties.Schema == nil {
			no := false
			s.AdditionalProperties.Has = &no
		}
		for _, p := range s.Properties {
			walk(p)
		}
		walk(s.Items)
		walk(s.AdditionalProperties.Schema)
		walk(s.Not)
		for _, list := range []openapi3.SchemaRefs{s.OneOf, s.AnyOf, s.AllOf} {
			for _, r := range list {
				walk(r)
			}
		}
	}
	content := func(c openapi3.Content) {
		for _, mt := range c {
			walk(mt.Schema)
		}
	}
	for _, s := range doc.Components.Schemas {
		walk(s)
	}
	for _, item := range doc.Paths.Map() {
		for _, op := range item.Operations() {
			if op.RequestBody != nil && op.RequestBody.Value != nil {
				content(op.RequestBody.Value.Content)
			}
			for _, r := range op.Responses.Map() {
				if r.Value != nil {
					content(r.Value.Content)
				}
			}
		}
	}
}
