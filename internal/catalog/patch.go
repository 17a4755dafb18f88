package catalog

import (
	"encoding/json"

	"github.com/navad/navad/campaigns"
)

// mergePatch applies an RFC 7396 JSON merge patch to doc.
func mergePatch(doc, patch []byte) ([]byte, error) {
	var d, p any
	if err := json.Unmarshal(doc, &d); err != nil {
		return nil, err
	}
	if err := json.Unmarshal(patch, &p); err != nil {
		return nil, campaigns.JSONError(err)
	}
	return json.Marshal(merge(d, p))
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
