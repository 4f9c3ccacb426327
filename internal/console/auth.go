package console

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"net/http"
	"strings"
)

// Replays need the console token (rtmanager --console-token). A browser
// presents it once on /login and then carries a session cookie that is an
// HMAC of the token, never the token itself; a script may send the token
// as "Authorization: Bearer <token>" instead. Without a token the console
// is read-only: no replay button is rendered and every replay is refused.

const sessionCookie = "rtmanager_console"

type auth struct {
	token   []byte
	session string // the cookie value: hex HMAC-SHA256(token, sessionLabel)
}

// sessionLabel is what the cookie's HMAC signs; a new label (or a new token)
// logs every browser out.
const sessionLabel = "rtmanager console session v1"

func newAuth(token string) auth {
	if token == "" {
		return auth{}
	}
	m := hmac.New(sha256.New, []byte(token))
	m.Write([]byte(sessionLabel))
	return auth{token: []byte(token), session: hex.EncodeToString(m.Sum(nil))}
}

// enabled reports whether replays are possible at all.
func (a auth) enabled() bool { return len(a.token) > 0 }

// allowed reports whether r carries the token or the session cookie.
func (a auth) allowed(r *http.Request) bool {
	if !a.enabled() {
		return false
	}
	if h, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); ok {
		return a.tokenOK(h)
	}
	ck, err := r.Cookie(sessionCookie)
	if err != nil {
		return false
	}
	return subtle.ConstantTimeCompare([]byte(ck.Value), []byte(a.session)) == 1
}

func (a auth) tokenOK(s string) bool {
	return a.enabled() && subtle.ConstantTimeCompare([]byte(s), a.token) == 1
}

func (c *Console) loginForm(w http.ResponseWriter, r *http.Request) {
	c.render(w, r, http.StatusOK, "login", loginPage{Enabled: c.auth.enabled()})
}

type loginPage struct {
	Enabled bool
	Failed  bool
}

func (c *Console) login(w http.ResponseWriter, r *http.Request) {
	if !c.auth.enabled() {
		c.render(w, r, http.StatusForbidden, "login", loginPage{})
		return
	}
	if !c.auth.tokenOK(r.PostFormValue("token")) {
		c.render(w, r, http.StatusUnauthorized, "login", loginPage{Enabled: true, Failed: true})
		return
	}
	http.SetCookie(w, &http.Cookie{
		Name: sessionCookie, Value: c.auth.session, Path: "/",
		HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: r.TLS != nil,
	})
	http.Redirect(w, r, "/dead", http.StatusSeeOther)
}

func (c *Console) logout(w http.ResponseWriter, r *http.Request) {
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: "", Path: "/", MaxAge: -1,
		HttpOnly: true, SameSite: http.SameSiteStrictMode})
	http.Redirect(w, r, "/", http.StatusSeeOther)
}
