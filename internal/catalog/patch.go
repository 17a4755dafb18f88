package catalog

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/navad/navad/campaigns"
)

// mergePatch applies an RFC 7396 JSON merge patch to doc. Both are whole
// JSON documents (PatchCampaign has parsed the patch already). Numbers pass
// through as written: as float64 a budget over 2^53 would change with any
// patch.
func mergePatch(doc, patch []byte) ([]byte, error) {
	var d, p any
	if err := decodeNumbers(doc, &d); err != nil {
		return nil, err
	}
	if err := decodeNumbers(patch, &p); err != nil {
		return nil, campaigns.JSONError(err)
	}
	m, err := merge(d, p, "")
	if err != nil {
		return nil, err
	}
	return json.Marshal(m)
}

// decodeNumbers decodes b into v, numbers as json.Number.
func decodeNumbers(b []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	return dec.Decode(v)
}

// merge applies patch to target. The merge is by exact member name, as
// RFC 7396 says, but Go's JSON decoder matches names without regard to
// case, so a patch member that differs only in case from the document's
// ("NAME" beside "name") would leave two spellings of one field, and which
// one the decoder applies would depend on their order: the patch would be
// ignored or applied silently. Such a member is refused, with the path to
// it. (Two spellings within the patch are refused before, by
// campaigns.CheckUniqueKeys.)
func merge(target, patch any, path string) (any, error) {
	pm, ok := patch.(map[string]any)
	if !ok {
		return patch, nil
	}
	tm, ok := target.(map[string]any)
	if !ok {
		tm = map[string]any{}
	}
	for _, k := range slices.Sorted(maps.Keys(pm)) { // so that the error names the same member every time
		if _, ok := tm[k]; ok {
			continue
		}
		for other := range tm {
			if strings.EqualFold(other, k) {
				return nil, invalid(path+k, fmt.Sprintf("is not a field name; the field is %q (field names are case-sensitive)", other))
			}
		}
	}
	for k, v := range pm {
		if v == nil {
			delete(tm, k)
			continue
		}
		m, err := merge(tm[k], v, path+k+".")
		if err != nil {
			return nil, err
		}
		tm[k] = m
	}
	return tm, nil
}

func describeJSONError(err error) string {
	return campaigns.ErrorMessage(campaigns.JSONError(err))
}
