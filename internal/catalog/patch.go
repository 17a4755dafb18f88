package catalog

import (
	"bytes"
	"encoding/json"

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
	return json.Marshal(merge(d, p))
}

// decodeNumbers decodes b into v, numbers as json.Number.
func decodeNumbers(b []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	return dec.Decode(v)
}

func merge(target, patch any) any {
	pm, ok := patch.(map[string]any)
	if !ok {
		return patch
	}
	tm, ok := target.(map[string]any)
	if !ok {
		tm = map[string]any{}
	}
	for k, v := range pm {
		if v == nil {
			delete(tm, k)
			continue
		}
		tm[k] = merge(tm[k], v)
	}
	return tm
}

func describeJSONError(err error) string {
	return campaigns.ErrorMessage(campaigns.JSONError(err))
}
