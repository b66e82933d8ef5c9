package testinvite

import (
	"encoding/base64"
	"net/http"
	"sort"
	"strings"
)

// Authenticator adds credentials to a REST request. Implementations must be safe for concurrent
// use and must not log the credentials. The legacy endpoints do not use it: they carry the
// credentials in the requester object of the body.
type Authenticator interface {
	Authenticate(req *http.Request)
}

// BasicAuth sends HTTP basic authentication with the organization id as user name and the private
// key as password. It is the default scheme.
type BasicAuth struct {
	OrganizationID string
	PrivateKey     Secret
}

// Authenticate sets the Authorization header.
func (a BasicAuth) Authenticate(req *http.Request) {
	req.SetBasicAuth(a.OrganizationID, a.PrivateKey.Reveal())
}

// BearerAuth sends "Authorization: Bearer <token>".
type BearerAuth struct {
	Token Secret
}

// Authenticate sets the Authorization header.
func (a BearerAuth) Authenticate(req *http.Request) {
	req.Header.Set("Authorization", "Bearer "+a.Token.Reveal())
}

// HeaderAuth sends fixed headers whose values were expanded from templates once, when it was built.
type HeaderAuth struct {
	names  []string
	values []string
}

// NewHeaderAuth expands the {organization_id}, {private_key} and {token} placeholders of each
// header value and returns an Authenticator that sends the results.
func NewHeaderAuth(headers map[string]string, organizationID string, privateKey, token Secret) *HeaderAuth {
	r := strings.NewReplacer("{organization_id}", organizationID, "{private_key}", privateKey.Reveal(), "{token}", token.Reveal())
	a := &HeaderAuth{}
	for name := range headers {
		a.names = append(a.names, http.CanonicalHeaderKey(name))
	}
	sort.Strings(a.names)
	for _, name := range a.names {
		for k, v := range headers {
			if http.CanonicalHeaderKey(k) == name {
				a.values = append(a.values, r.Replace(v))
				break
			}
		}
	}
	return a
}

// Authenticate sets the headers.
func (a *HeaderAuth) Authenticate(req *http.Request) {
	for i, name := range a.names {
		req.Header.Set(name, a.values[i])
	}
}

// newAuthenticator builds the Authenticator of a validated Config.
func newAuthenticator(c Config) Authenticator {
	switch c.Auth.Scheme {
	case SchemeBearer:
		return BearerAuth{Token: c.Token}
	case SchemeHeaders:
		return NewHeaderAuth(c.Auth.Headers, c.OrganizationID, c.PrivateKey, c.Token)
	}
	return BasicAuth{OrganizationID: c.OrganizationID, PrivateKey: c.PrivateKey}
}

// scrubber replaces every form in which the credentials could appear with [REDACTED].
type scrubber struct{ r *strings.Replacer }

func newScrubber(c Config) scrubber {
	var pairs []string
	add := func(s string) {
		if s != "" {
			pairs = append(pairs, s, redacted)
		}
	}
	add(c.PrivateKey.Reveal())
	add(c.Token.Reveal())
	if c.PrivateKey != "" {
		add(base64.StdEncoding.EncodeToString([]byte(c.OrganizationID + ":" + c.PrivateKey.Reveal())))
	}
	return scrubber{strings.NewReplacer(pairs...)}
}

func (s scrubber) scrub(text string) string { return s.r.Replace(text) }
