package httpapi

import (
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/navad/navad/campaigns"
	"github.com/navad/navad/internal/auth"
	"github.com/navad/navad/internal/reports"
	"github.com/navad/navad/internal/storage"
)

// routeReports adds GET /v1/reports and its map, for every role; the
// reports service limits each to what it may see.
func (s *Server) routeReports(v1 *gin.RouterGroup) {
	if s.Reports == nil {
		return
	}
	anyKey := s.keyed(campaigns.Admin, campaigns.Agency, campaigns.Advertiser, campaigns.Publisher)
	v1.GET("/reports", anyKey(s.getReport))
	v1.GET("/reports/cells.geojson", anyKey(s.getCellsGeoJSON))
}

// getReport answers GET /v1/reports: JSON by default, CSV with
// format=csv (and a UTF-8 byte order mark with bom=true).
func (s *Server) getReport(c *gin.Context, who *auth.Principal) {
	qs := c.Request.URL.Query()
	var p campaigns.Problems
	q := s.reportQuery(qs, &p)
	for _, name := range values(qs, "group_by") {
		d, ok := storage.ParseDim(name)
		if !ok {
			p.Add("group_by", "must list any of day, hour, campaign, advertiser, publisher, store, cell; got %q", truncate(name, 20))
			continue
		}
		q.GroupBy |= storage.DimsOf(d)
	}
	format := "json"
	if v := qs.Get("format"); v != "" {
		format = v
	}
	givenOnce(qs, &p, "format", "bom")
	if format != "json" && format != "csv" {
		p.Add("format", "must be json or csv, got %q", truncate(format, 20))
	}
	bom, err := boolParam(qs, "bom")
	if err != nil {
		p.Add("bom", "must be true or false")
	}
	if err := p.Err(); err != nil {
		s.fail(c, err)
		return
	}
	rep, err := s.Reports.Report(c.Request.Context(), who, q)
	if err != nil {
		s.fail(c, err)
		return
	}
	c.Header("Cache-Control", "private, no-store")
	c.Status(http.StatusOK)
	if format == "csv" {
		c.Header("Content-Type", "text/csv; charset=utf-8")
		c.Header("Content-Disposition", fmt.Sprintf(`attachment; filename="navad-report-%s-%s.csv"`, rep.From, rep.To))
		err = rep.WriteCSV(c.Writer, bom)
	} else {
		c.Header("Content-Type", "application/json; charset=utf-8")
		err = rep.WriteJSON(c.Writer)
	}
	s.reportWritten(c, err)
}

// getCellsGeoJSON answers GET /v1/reports/cells.geojson: the report
// grouped by cell, as hexagons.
func (s *Server) getCellsGeoJSON(c *gin.Context, who *auth.Principal) {
	var p campaigns.Problems
	q := s.reportQuery(c.Request.URL.Query(), &p)
	if err := p.Err(); err != nil {
		s.fail(c, err)
		return
	}
	q.GroupBy = storage.DimsOf(storage.DimCell)
	rep, err := s.Reports.Report(c.Request.Context(), who, q)
	if err != nil {
		s.fail(c, err)
		return
	}
	c.Header("Cache-Control", "private, no-store")
	c.Header("Content-Type", "application/geo+json; charset=utf-8")
	c.Status(http.StatusOK)
	s.reportWritten(c, rep.WriteGeoJSON(c.Writer))
}

// reportWritten handles an error while streaming a report: the status is
// sent, so all that is left is to note it, unless the client went away.
func (s *Server) reportWritten(c *gin.Context, err error) {
	if err != nil && c.Request.Context().Err() == nil {
		s.Logger.Warn("report not written", "request_id", requestIDOf(c), "err", err)
	}
}

// reportQuery reads the period and filters shared by both report calls.
// from and to are days (YYYY-MM-DD) in the business time zone; each
// defaults to today, or to the other when only one is given. One given
// empty is a 400, as the OpenAPI document says: it is a mistake (a
// script's unset variable), and answering today's report for it gave the
// script a day it did not ask for.
func (s *Server) reportQuery(qs url.Values, p *campaigns.Problems) reports.Query {
	var q reports.Query
	today := storage.DayOf(s.Engine.Now().In(s.Reports.Location()))
	day := func(field string) (storage.Day, bool) {
		if _, ok := qs[field]; !ok {
			return today, false
		}
		if !givenOnce(qs, p, field) {
			return today, true
		}
		v := qs.Get(field)
		d, err := storage.ParseDay(v)
		if err != nil {
			p.Add(field, "must be a date such as 2026-11-01, got %q", truncate(v, 20))
		}
		return d, true
	}
	from, hasFrom := day("from")
	to, hasTo := day("to")
	switch {
	case hasFrom && !hasTo:
		to = from
	case hasTo && !hasFrom:
		from = to
	}
	q.From, q.To = from, to
	ids := func(field string) []string {
		vs := values(qs, field)
		if vs == nil {
			return nil
		}
		if len(vs) == 0 { // present but empty: a filter that admits nothing is a mistake
			p.Add(field, "must name at least one ID")
			return nil
		}
		for _, id := range vs {
			if err := campaigns.ValidateID(id); err != nil {
				p.Add(field, "%s", err.Error())
			}
		}
		return vs
	}
	q.CampaignIDs = ids("campaign_id")
	q.AdvertiserIDs = ids("advertiser_id")
	q.PublisherIDs = ids("publisher_id")
	return q
}

// givenOnce adds a problem naming each of fields that qs gives more than
// once, and reports whether there was none: a field of one value given
// twice is refused, as a decision's is, rather than its first value used.
func givenOnce(qs url.Values, p *campaigns.Problems, fields ...string) bool {
	once := true
	for _, f := range fields {
		if len(qs[f]) > 1 {
			p.Add(f, "must be given once")
			once = false
		}
	}
	return once
}

// values returns a list parameter, given as repeated parameters and/or
// comma-separated, without empty items; nil when absent.
func values(qs url.Values, field string) []string {
	raw, ok := qs[field]
	if !ok {
		return nil
	}
	out := []string{}
	for _, v := range raw {
		for _, part := range strings.Split(v, ",") {
			if part = strings.TrimSpace(part); part != "" {
				out = append(out, part)
			}
		}
	}
	return out
}

func boolParam(qs url.Values, field string) (bool, error) {
	// Go's booleans (1, t, true, 0, f, false) in any case, and yes or no;
	// absent or empty is false.
	switch v := strings.ToLower(qs.Get(field)); v {
	case "", "no":
		return false, nil
	case "yes":
		return true, nil
	default:
		b, err := strconv.ParseBool(v)
		if err != nil {
			return false, fmt.Errorf("%s: not a boolean", field)
		}
		return b, nil
	}
}
