package httpapi

import (
	"bufio"
	"bytes"
	"cmp"
	"encoding/json"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/navad/navad/campaigns"
	"github.com/navad/navad/internal/auth"
	"github.com/navad/navad/internal/catalog"
)

// ---- Accounts ----

type accountRequest struct {
	Type     campaigns.Role `json:"type"`
	Name     string         `json:"name"`
	AgencyID string         `json:"agency_id"`
}

type accountJSON struct {
	*campaigns.Account
	APIKey string `json:"api_key,omitempty"`
}

func (s *Server) createAccount(c *gin.Context, who *auth.Principal) {
	var body accountRequest
	if err := s.readJSON(c, s.opt.MaxJSONBodyBytes, &body, true); err != nil {
		s.fail(c, err)
		return
	}
	a, key, err := s.Catalog.CreateAccount(c.Request.Context(), who, campaigns.Account{Type: body.Type, Name: body.Name, AgencyID: body.AgencyID})
	if err != nil {
		s.fail(c, err)
		return
	}
	c.JSON(http.StatusCreated, accountJSON{Account: a, APIKey: key})
}

func (s *Server) getAccount(c *gin.Context, who *auth.Principal) {
	a, err := s.Catalog.Account(c.Request.Context(), who, c.Param("id"))
	if err != nil {
		s.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, accountJSON{Account: a})
}

// rotateKey issues a new key; ?keep_old=true keeps the old ones working
// until DELETE /v1/accounts/{id}/keys/old.
func (s *Server) rotateKey(c *gin.Context, who *auth.Principal) {
	keep, err := keepOld(c.Request.URL.Query())
	if err != nil {
		s.fail(c, err)
		return
	}
	key, err := s.Catalog.RotateKey(c.Request.Context(), who, c.Param("id"), keep)
	if err != nil {
		s.fail(c, err)
		return
	}
	c.JSON(http.StatusCreated, gin.H{"id": c.Param("id"), "api_key": key})
}

// keepOld reads keep_old as the boolean the OpenAPI document declares
// (strconv.ParseBool's spellings). Anything else, an empty value or the
// parameter twice is Invalid rather than false: false revokes every older
// key at once, which a client that wrote keep_old=yes did not ask for.
func keepOld(qs url.Values) (bool, error) {
	vs, ok := qs["keep_old"]
	if !ok {
		return false, nil
	}
	if len(vs) == 1 {
		if keep, err := strconv.ParseBool(vs[0]); err == nil {
			return keep, nil
		}
	}
	var p campaigns.Problems
	p.Add("keep_old", "must be given once, as true or false")
	return false, p.Err()
}

func (s *Server) revokeOldKeys(c *gin.Context, who *auth.Principal) {
	if err := s.Catalog.RevokeOldKeys(c.Request.Context(), who, c.Param("id")); err != nil {
		s.fail(c, err)
		return
	}
	c.Status(http.StatusNoContent)
}

// ---- Campaigns ----

func (s *Server) readCampaign(c *gin.Context) (campaigns.Campaign, bool) {
	var body campaigns.Campaign
	if err := s.readJSON(c, s.opt.MaxJSONBodyBytes, &body, true); err != nil {
		s.fail(c, err)
		return body, false
	}
	return body, true
}

func (s *Server) createCampaign(c *gin.Context, who *auth.Principal) {
	body, ok := s.readCampaign(c)
	if !ok {
		return
	}
	if body.AdvertiserID == "" {
		body.AdvertiserID = c.Query("advertiser_id")
	}
	out, err := s.Catalog.CreateCampaign(c.Request.Context(), who, body)
	if err != nil {
		s.fail(c, err)
		return
	}
	c.Header("Location", "/v1/campaigns/"+out.ID)
	c.JSON(http.StatusCreated, out)
}

func (s *Server) listCampaigns(c *gin.Context, who *auth.Principal) {
	list, err := s.Catalog.Campaigns(c.Request.Context(), who, c.Query("advertiser_id"))
	if err != nil {
		s.fail(c, err)
		return
	}
	if list == nil {
		list = []*campaigns.Campaign{}
	}
	c.JSON(http.StatusOK, gin.H{"campaigns": list})
}

func (s *Server) getCampaign(c *gin.Context, who *auth.Principal) {
	out, err := s.Catalog.Campaign(c.Request.Context(), who, c.Param("id"))
	if err != nil {
		s.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, out)
}

func (s *Server) replaceCampaign(c *gin.Context, who *auth.Principal) {
	body, ok := s.readCampaign(c)
	if !ok {
		return
	}
	out, err := s.Catalog.ReplaceCampaign(c.Request.Context(), who, c.Param("id"), body)
	if err != nil {
		s.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, out)
}

func (s *Server) patchCampaign(c *gin.Context, who *auth.Principal) {
	body := limitBody(c, s.opt.MaxJSONBodyBytes)
	patch, err := io.ReadAll(body)
	if err != nil {
		s.fail(c, body.fail(err))
		return
	}
	out, err := s.Catalog.PatchCampaign(c.Request.Context(), who, c.Param("id"), patch)
	if err != nil {
		s.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, out)
}

func (s *Server) deleteCampaign(c *gin.Context, who *auth.Principal) {
	if err := s.Catalog.DeleteCampaign(c.Request.Context(), who, c.Param("id")); err != nil {
		s.fail(c, err)
		return
	}
	c.Status(http.StatusNoContent)
}

func (s *Server) pauseCampaign(c *gin.Context, who *auth.Principal) {
	s.setStatus(c, who, campaigns.Paused)
}
func (s *Server) resumeCampaign(c *gin.Context, who *auth.Principal) {
	s.setStatus(c, who, campaigns.Active)
}

func (s *Server) setStatus(c *gin.Context, who *auth.Principal, st campaigns.Status) {
	out, err := s.Catalog.SetCampaignStatus(c.Request.Context(), who, c.Param("id"), st)
	if err != nil {
		s.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, out)
}

// ---- Stores and stock ----

// uploadFormat picks the store list format from the Content-Type (or a
// format= parameter), sniffing JSON bodies: an array is a JSON list, an
// object a GeoJSON FeatureCollection.
func uploadFormat(c *gin.Context, body *bufio.Reader) (campaigns.UploadFormat, error) {
	if f := c.Query("format"); f != "" {
		switch campaigns.UploadFormat(f) {
		case campaigns.JSONArray, campaigns.CSV, campaigns.GeoJSON:
			return campaigns.UploadFormat(f), nil
		}
		return "", campaigns.Errorf(campaigns.Invalid, "format must be json, csv or geojson, got %q", truncate(f, 20))
	}
	mt, _, _ := mime.ParseMediaType(c.GetHeader("Content-Type"))
	switch mt {
	case "text/csv", "application/csv":
		return campaigns.CSV, nil
	case "application/geo+json":
		return campaigns.GeoJSON, nil
	case "", "application/json", "text/plain":
		for {
			b, err := body.Peek(1)
			if err != nil {
				return campaigns.JSONArray, nil // empty: the JSON reader says so
			}
			switch b[0] {
			case ' ', '\t', '\r', '\n':
				_, _ = body.Discard(1)
				continue
			case '{':
				return campaigns.GeoJSON, nil
			case 0xEF: // a UTF-8 byte-order mark: a CSV saved by Excel
				return campaigns.CSV, nil
			}
			return campaigns.JSONArray, nil
		}
	}
	return "", campaigns.Errorf(campaigns.Invalid, "Content-Type must be application/json, text/csv or application/geo+json, got %q", truncate(mt, 40))
}

// writableAdvertiser resolves the advertiser a store upload or stock batch
// names in its query, and checks that who may write its data, before the
// body is read: a caller who may not gets 403 whatever the body holds (a
// bad body was a 400, and megabytes parsed for nothing). The write then
// goes to the advertiser found, without asking the store again.
func (s *Server) writableAdvertiser(c *gin.Context, who *auth.Principal) (catalog.Writable, bool) {
	w, err := s.Catalog.Writable(c.Request.Context(), who, c.Query("advertiser_id"))
	if err != nil {
		s.fail(c, err)
		return w, false
	}
	return w, true
}

func (s *Server) putStores(c *gin.Context, who *auth.Principal) {
	advID, ok := s.writableAdvertiser(c, who)
	if !ok {
		return
	}
	raw := limitBody(c, s.opt.MaxBodyBytes)
	body := bufio.NewReaderSize(raw, 64<<10)
	format, err := uploadFormat(c, body)
	if err != nil {
		s.fail(c, err)
		return
	}
	up, err := campaigns.ReadStores(body, format, s.opt.MaxUploadRows)
	if err != nil {
		s.fail(c, raw.fail(err))
		return
	}
	adv, err := s.Catalog.PutStoresOf(c.Request.Context(), advID, up.Stores, up.Rows)
	if err != nil {
		s.fail(c, err)
		return
	}
	answer := gin.H{"advertiser_id": adv, "stores": len(up.Stores)}
	if len(up.IgnoredProperties) > 0 {
		answer["ignored_properties"] = up.IgnoredProperties
	}
	if len(up.OpeningHoursUnread) > 0 {
		answer["opening_hours_unread"] = up.OpeningHoursUnread
	}
	c.JSON(http.StatusOK, answer)
}

func (s *Server) listStores(c *gin.Context, who *auth.Principal) {
	// Stream the list: an advertiser may have tens of thousands of stores.
	first := true
	started := false
	var werr error // writing to the client, or encoding a store
	err := s.Catalog.Stores(c.Request.Context(), who, c.Query("advertiser_id"), func(st *campaigns.Store) bool {
		if !started {
			c.Header("Content-Type", "application/json; charset=utf-8")
			c.Status(http.StatusOK)
			_, _ = io.WriteString(c.Writer, `{"stores":[`)
			started = true
		}
		b, err := json.Marshal(st)
		if err != nil {
			werr = err
			return false
		}
		if !first {
			_, _ = c.Writer.Write([]byte{','})
		}
		first = false
		_, werr = c.Writer.Write(b)
		return werr == nil
	})
	if err != nil && !started {
		s.fail(c, err)
		return
	}
	if !started {
		c.JSON(http.StatusOK, gin.H{"stores": []any{}})
		return
	}
	if err = cmp.Or(err, werr); err != nil {
		s.abortStream(c, err)
	}
	_, _ = io.WriteString(c.Writer, "]}")
}

// abortStream ends a streamed answer that failed after its 200 was sent.
// Closing the list as if it were whole would hand the client a valid but
// short answer; instead the connection is cut before the end of the body
// (no last chunk), which every HTTP client reports as an error.
func (s *Server) abortStream(c *gin.Context, err error) {
	if c.Request.Context().Err() == nil {
		s.Logger.Warn("answer cut short", "request_id", requestIDOf(c), "route", c.FullPath(), "err", err)
	}
	panic(http.ErrAbortHandler)
}

func (s *Server) getStore(c *gin.Context, who *auth.Principal) {
	st, err := s.Catalog.Store(c.Request.Context(), who, c.Query("advertiser_id"), c.Param("id"))
	if err != nil {
		s.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, st)
}

func (s *Server) deleteStore(c *gin.Context, who *auth.Principal) {
	if err := s.Catalog.DeleteStore(c.Request.Context(), who, c.Query("advertiser_id"), c.Param("id")); err != nil {
		s.fail(c, err)
		return
	}
	c.Status(http.StatusNoContent)
}

func (s *Server) putInventory(c *gin.Context, who *auth.Principal) {
	adv, ok := s.writableAdvertiser(c, who)
	if !ok {
		return
	}
	var raw []json.RawMessage
	limit := s.opt.MaxJSONBodyBytes
	// A full batch of 10,000 rows needs more than the default JSON limit.
	if byRows := int64(s.opt.MaxStockRows) * 256; byRows > limit {
		limit = byRows
	}
	if err := s.readJSON(c, limit, &raw, true); err != nil {
		if strings.Contains(campaigns.ErrorMessage(err), "must be") && raw == nil {
			s.fail(c, campaigns.Errorf(campaigns.Invalid, "the body must be a JSON array of {store_id, product_id, in_stock, quantity}: %s", campaigns.ErrorMessage(err)))
			return
		}
		s.fail(c, err)
		return
	}
	if raw == nil { // the body null
		s.fail(c, campaigns.Errorf(campaigns.Invalid, "the body must be a JSON array of {store_id, product_id, in_stock, quantity}, not null"))
		return
	}
	rows, err := stockRows(raw, s.Catalog.Now())
	if err != nil {
		s.fail(c, err)
		return
	}
	res, err := s.Catalog.PutStockOf(c.Request.Context(), adv, rows, s.opt.MaxStockRows)
	if err != nil {
		s.fail(c, err)
		return
	}
	s.Metrics.ObserveStock(res.Updated, res.Stale)
	c.JSON(http.StatusOK, res)
}

// stockRows decodes a batch's rows one by one, so that a row of the wrong
// shape (a string for in_stock, a fractional quantity, an unknown member)
// is reported by its number with every other bad row, of either kind (a
// row that decodes and says something wrong, such as an empty store_id),
// as a store upload's are, rather than end the batch at the first.
func stockRows(raw []json.RawMessage, now time.Time) ([]campaigns.StockUpdate, error) {
	rows := make([]campaigns.StockUpdate, len(raw))
	var probs campaigns.Problems
	for i, r := range raw {
		dec := json.NewDecoder(bytes.NewReader(r))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&rows[i]); err != nil {
			probs.AddRow(i+1, "%s", campaigns.ErrorMessage(campaigns.JSONError(err)))
		} else if msg := rows[i].RowProblem(now); msg != "" {
			probs.AddRow(i+1, "%s", msg)
		}
	}
	return rows, probs.Err()
}
