package console

import (
	"bytes"
	"embed"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Pages are html/template files under templates/: layout.html wraps each
// page's "content". html/template escapes everything a stream or a record
// holds for where it lands (text, attribute, URL).

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

var pageNames = []string{"overview", "jobs", "timeline", "games", "game", "dead", "confirm", "replayed", "login", "error"}

type pages struct{ byName map[string]*template.Template }

func parsePages() (*pages, error) {
	p := &pages{byName: map[string]*template.Template{}}
	for _, name := range pageNames {
		t, err := template.New("layout.html").Funcs(funcs).ParseFS(templateFS, "templates/layout.html", "templates/"+name+".html")
		if err != nil {
			return nil, fmt.Errorf("parse page %s: %w", name, err)
		}
		p.byName[name] = t
	}
	return p, nil
}

// view is what every page's template gets.
type view struct {
	Page string
	// TokenSet: the console was given a token, so replays are possible.
	TokenSet bool
	// CanReplay: this request carries the token (or its session cookie).
	CanReplay bool
	Data      any
}

// render writes page name with data; a template error is a 500 with no
// partial page.
func (c *Console) render(w http.ResponseWriter, r *http.Request, status int, name string, data any) {
	t, ok := c.pages.byName[name]
	if !ok {
		http.Error(w, "no such page", http.StatusInternalServerError)
		return
	}
	var buf bytes.Buffer
	v := view{Page: name, TokenSet: c.auth.enabled(), CanReplay: c.auth.allowed(r), Data: data}
	if err := t.ExecuteTemplate(&buf, "layout", v); err != nil {
		c.log.Error("console: render page", "page", name, "err", err.Error())
		http.Error(w, "page failed to render", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

// fail renders the error page; the message is shown escaped.
func (c *Console) fail(w http.ResponseWriter, r *http.Request, status int, what string, err error) {
	msg := what
	if err != nil {
		msg = what + ": " + err.Error()
		c.log.Warn("console: "+what, "err", err.Error())
	}
	c.render(w, r, status, "error", msg)
}

func staticHandler() http.Handler {
	sub, _ := fs.Sub(staticFS, "static")
	return http.StripPrefix("/static/", http.FileServerFS(sub))
}

var funcs = template.FuncMap{
	"ms":     fmtMS,
	"idtime": idTime,
	"ago":    fmtAgo,
	"rate":   func(f float64) string { return strconv.FormatFloat(f, 'f', 2, 64) },
}

// fmtMS formats Unix milliseconds (a number or its decimal text) as UTC.
func fmtMS(v any) string {
	var n int64
	switch x := v.(type) {
	case int64:
		n = x
	case string:
		var err error
		if n, err = strconv.ParseInt(x, 10, 64); err != nil {
			return x
		}
	}
	if n <= 0 {
		return ""
	}
	return time.UnixMilli(n).UTC().Format("2006-01-02 15:04:05.000")
}

// idTime is the time in a stream entry id (its milliseconds part).
func idTime(id string) string {
	ms, _, _ := strings.Cut(id, "-")
	return fmtMS(ms)
}

// fmtAgo formats a duration to the second (or ms below one second).
func fmtAgo(d time.Duration) string {
	if d < time.Second {
		return d.Round(time.Millisecond).String()
	}
	return d.Round(time.Second).String()
}
