package backends

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// Sample is one series of an instant query's result.
type Sample struct {
	Metric map[string]string
	Value  float64
}

// Point is one raw sample of a series.
type Point struct {
	Time  time.Time
	Value float64
}

// Series is a series' raw samples.
type Series struct {
	Metric map[string]string
	Points []Point
}

// apiGet asks a Prometheus-compatible HTTP API (Prometheus's, and
// VictoriaMetrics' at the same paths) and decodes its data.
func apiGet(base, path string, params url.Values, into any) error {
	resp, err := http.Get(base + path + "?" + params.Encode())
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	var r struct {
		Status string          `json:"status"`
		Error  string          `json:"error"`
		Data   json.RawMessage `json:"data"`
	}
	if err := json.Unmarshal(body, &r); err != nil {
		return fmt.Errorf("%s %s: %s: %.200s", path, params.Encode(), resp.Status, body)
	}
	if r.Status != "success" {
		return fmt.Errorf("%s %s: %s", path, params.Encode(), r.Error)
	}
	if err := json.Unmarshal(r.Data, into); err != nil {
		return fmt.Errorf("%s: %w: %.200s", path, err, body)
	}
	return nil
}

// Query runs an instant query at time at.
func Query(base, expr string, at time.Time) ([]Sample, error) {
	var data struct {
		ResultType string `json:"resultType"`
		Result     []struct {
			Metric map[string]string `json:"metric"`
			Value  [2]any            `json:"value"`
		} `json:"result"`
	}
	params := url.Values{"query": {expr}, "time": {unixString(at)}, "nocache": {"1"}}
	if err := apiGet(base, "/api/v1/query", params, &data); err != nil {
		return nil, err
	}
	if data.ResultType != "vector" {
		return nil, fmt.Errorf("%s: a %s, want a vector", expr, data.ResultType)
	}
	out := make([]Sample, 0, len(data.Result))
	for _, r := range data.Result {
		v, err := value(r.Value[1])
		if err != nil {
			return nil, fmt.Errorf("%s: %v: %w", expr, r.Metric, err)
		}
		out = append(out, Sample{r.Metric, v})
	}
	return out, nil
}

// RawSamples returns the samples of the series of selector in the window
// before at, as stored (a range selector in an instant query).
func RawSamples(base, selector string, window time.Duration, at time.Time) ([]Series, error) {
	var data struct {
		Result []struct {
			Metric map[string]string `json:"metric"`
			Values [][2]any          `json:"values"`
		} `json:"result"`
	}
	expr := fmt.Sprintf("%s[%dms]", selector, window.Milliseconds())
	params := url.Values{"query": {expr}, "time": {unixString(at)}, "nocache": {"1"}}
	if err := apiGet(base, "/api/v1/query", params, &data); err != nil {
		return nil, err
	}
	var out []Series
	for _, r := range data.Result {
		s := Series{Metric: r.Metric}
		for _, tv := range r.Values {
			ts, ok := tv[0].(float64)
			if !ok {
				return nil, fmt.Errorf("%s: timestamp %v is not a number", expr, tv[0])
			}
			v, err := value(tv[1])
			if err != nil {
				return nil, err
			}
			s.Points = append(s.Points, Point{time.UnixMilli(int64(ts*1000 + 0.5)), v})
		}
		out = append(out, s)
	}
	return out, nil
}

// LabelValues returns the values of label on the series of selector, as
// Grafana's label_values() asks for them.
func LabelValues(base, label, selector string) ([]string, error) {
	var values []string
	err := apiGet(base, "/api/v1/label/"+label+"/values", url.Values{"match[]": {selector}}, &values)
	return values, err
}

// value is a sample value as the API writes it: a string, "NaN" and
// "+Inf" included.
func value(v any) (float64, error) {
	s, ok := v.(string)
	if !ok {
		return 0, fmt.Errorf("value %v is not a string", v)
	}
	return strconv.ParseFloat(s, 64)
}

func unixString(t time.Time) string {
	return strconv.FormatFloat(float64(t.UnixMilli())/1000, 'f', 3, 64)
}

// LogsQL runs a LogsQL query on VictoriaLogs over [start, end] and returns
// the log entries, each a map of its fields.
func LogsQL(base, query string, start, end time.Time) ([]map[string]string, error) {
	params := url.Values{"query": {query}, "start": {start.Format(time.RFC3339Nano)}, "end": {end.Format(time.RFC3339Nano)}}
	resp, err := http.PostForm(base+"/select/logsql/query", params)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("LogsQL %s: %s: %s", query, resp.Status, body)
	}
	var out []map[string]string
	s := bufio.NewScanner(bytes.NewReader(body))
	s.Buffer(nil, 1<<20)
	for s.Scan() {
		if len(bytes.TrimSpace(s.Bytes())) == 0 {
			continue
		}
		var entry map[string]string
		if err := json.Unmarshal(s.Bytes(), &entry); err != nil {
			return nil, fmt.Errorf("LogsQL %s: %w: %s", query, err, s.Bytes())
		}
		out = append(out, entry)
	}
	return out, s.Err()
}
