package deploytest

import (
	"encoding/xml"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/tisync/tisync/schema"
)

const (
	clickhouseUsersFile = "deploy/clickhouse/users.d/tisync.xml"
	clickhouseRBACFile  = "deploy/clickhouse/rbac.sql"
	// sinkDatabase is clickhouse.database's default, which the grants name.
	sinkDatabase = "tisync"
)

// chUsersFile is the part of a ClickHouse users.d file that the tests read.
type chUsersFile struct {
	XMLName  xml.Name `xml:"clickhouse"`
	Profiles struct {
		Items []chProfile `xml:",any"`
	} `xml:"profiles"`
	Users struct {
		Items []chUser `xml:",any"`
	} `xml:"users"`
}

type chProfile struct {
	XMLName  xml.Name
	Settings []chSetting `xml:",any"`
}

type chSetting struct {
	XMLName xml.Name
	Value   string      `xml:",chardata"`
	Inner   []chSetting `xml:",any"`
}

type chUser struct {
	XMLName           xml.Name
	PlaintextPassword *string `xml:"password"`
	PasswordSHA256    *struct {
		FromEnv string `xml:"from_env,attr"`
		Value   string `xml:",chardata"`
	} `xml:"password_sha256_hex"`
	Networks struct {
		IP []string `xml:"ip"`
	} `xml:"networks"`
	Profile          string    `xml:"profile"`
	AccessManagement string    `xml:"access_management"`
	AllowDatabases   *struct{} `xml:"allow_databases"`
	Grants           struct {
		Query []string `xml:"query"`
	} `xml:"grants"`
}

func loadClickHouseUsers(t testing.TB) chUsersFile {
	t.Helper()
	var f chUsersFile
	if err := xml.Unmarshal(readRepoFile(t, clickhouseUsersFile), &f); err != nil {
		t.Fatalf("decode %s: %v", clickhouseUsersFile, err)
	}
	return f
}

func (f chUsersFile) user(t testing.TB, name string) chUser {
	t.Helper()
	for _, u := range f.Users.Items {
		if u.XMLName.Local == name {
			return u
		}
	}
	t.Fatalf("%s defines no user %s", clickhouseUsersFile, name)
	return chUser{}
}

func (f chUsersFile) profile(name string) (map[string]chSetting, bool) {
	for _, p := range f.Profiles.Items {
		if p.XMLName.Local == name {
			settings := map[string]chSetting{}
			for _, s := range p.Settings {
				settings[s.XMLName.Local] = s
			}
			return settings, true
		}
	}
	return nil, false
}

// privilegeGrant is one privilege on one object, such as SELECT on tisync.*.
type privilegeGrant struct {
	privilege, object string
}

func (g privilegeGrant) String() string { return g.privilege + " ON " + g.object }

var grantPattern = regexp.MustCompile(`(?is)^\s*GRANT\s+(.+?)\s+ON\s+(\S+)(?:\s+TO\s+(.+?))?\s*$`)

// parseGrant reads GRANT privilege[, ...] ON object [TO grantee[, ...]].
func parseGrant(stmt string) (grants []privilegeGrant, grantees []string, err error) {
	m := grantPattern.FindStringSubmatch(stmt)
	if m == nil {
		return nil, nil, fmt.Errorf("not a GRANT ... ON statement: %s", stmt)
	}
	for _, p := range strings.Split(m[1], ",") {
		grants = append(grants, privilegeGrant{privilege: strings.ToUpper(strings.Join(strings.Fields(p), " ")), object: m[2]})
	}
	for _, g := range strings.Split(m[3], ",") {
		if g = strings.TrimSpace(g); g != "" {
			grantees = append(grantees, g)
		}
	}
	return grants, grantees, nil
}

// requiredSinkGrants returns the privileges that tisync's statements need on the database, derived
// from the rendered migrations and the SQL literals of the sink's code. A statement of a kind it
// does not know fails the test, so that a new kind of migration cannot go unnoticed.
func requiredSinkGrants(t *testing.T) []privilegeGrant {
	t.Helper()
	opts := schema.RenderOptions{Database: sinkDatabase}
	statements, err := schema.BootstrapStatements(opts)
	if err != nil {
		t.Fatalf("render the bootstrap statements: %v", err)
	}
	migrations, err := schema.Migrations(opts)
	if err != nil {
		t.Fatalf("render the migrations: %v", err)
	}
	for _, m := range migrations {
		statements = append(statements, m.Statements...)
	}

	kinds := []struct {
		pattern   *regexp.Regexp
		privilege string
	}{
		{regexp.MustCompile(`(?is)^CREATE\s+DATABASE\b`), "CREATE DATABASE"},
		{regexp.MustCompile(`(?is)^CREATE\s+TABLE\b`), "CREATE TABLE"},
		{regexp.MustCompile(`(?is)^CREATE\s+VIEW\b`), "CREATE VIEW"},
	}
	need := map[string]bool{}
	for _, stmt := range statements {
		stmt = strings.TrimSpace(stmt)
		found := false
		for _, k := range kinds {
			if k.pattern.MatchString(stmt) {
				need[k.privilege] = true
				found = true
				break
			}
		}
		if !found {
			t.Errorf("a migration runs a statement whose privilege this test does not know; add its grant to %s and %s, and its kind here:\n%s",
				clickhouseUsersFile, clickhouseRBACFile, firstLine(stmt))
		}
	}

	// The statements the sink builds in code: each SQL string literal's first keyword.
	root := repoRoot(t)
	literal := regexp.MustCompile("[\"`]\\s*(SELECT|INSERT|ALTER|DROP|TRUNCATE|OPTIMIZE|DELETE|RENAME|SYSTEM|KILL|CREATE|EXCHANGE|ATTACH|DETACH|GRANT|REVOKE)\\s")
	for _, dir := range []string{"sink", "cmd"} {
		err := filepath.WalkDir(filepath.Join(root, dir), func(path string, d os.DirEntry, err error) error {
			if err != nil {
				return err
			}
			// Test helper packages such as sink/clickhouse/clickhousetest drop their databases.
			if d.IsDir() && strings.HasSuffix(d.Name(), "test") {
				return filepath.SkipDir
			}
			if d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
				return nil
			}
			data, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			for _, m := range literal.FindAllSubmatch(data, -1) {
				switch kw := string(m[1]); kw {
				case "SELECT", "INSERT":
					need[kw] = true
				default:
					rel, _ := filepath.Rel(root, path)
					t.Errorf("%s runs %s statements: add the grant they need to %s and %s, and the kind here", rel, kw, clickhouseUsersFile, clickhouseRBACFile)
				}
			}
			return nil
		})
		if err != nil {
			t.Fatalf("walk %s: %v", dir, err)
		}
	}
	if !need["INSERT"] || !need["SELECT"] {
		t.Errorf("found no INSERT and SELECT in the sink's code (found %v): the search is broken", sortedKeys(need))
	}

	var out []privilegeGrant
	for _, p := range sortedKeys(need) {
		out = append(out, privilegeGrant{privilege: p, object: sinkDatabase + ".*"})
	}
	return out
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return line
}

// sortedGrants returns grants sorted by their text.
func sortedGrants(grants []privilegeGrant) []string {
	var out []string
	for _, g := range grants {
		out = append(out, g.String())
	}
	sort.Strings(out)
	return slices.Compact(out)
}

func TestClickHouseUsersFile(t *testing.T) {
	f := loadClickHouseUsers(t)
	sinkProfile, ok := f.profile("tisync")
	if !ok {
		t.Fatal("no profile tisync")
	}
	readerProfile, ok := f.profile("tisync_reader")
	if !ok {
		t.Fatal("no profile tisync_reader")
	}
	if sinkProfile["max_memory_usage"].Value == "" {
		t.Error("profile tisync sets no max_memory_usage")
	}
	if v := readerProfile["readonly"].Value; v != "1" && v != "2" {
		t.Errorf("profile tisync_reader: readonly %q, want 1 or 2", v)
	}

	hex64 := regexp.MustCompile(`^[0-9a-f]{64}$`)
	for _, name := range []string{"tisync", "tisync_reader"} {
		u := f.user(t, name)
		if u.PlaintextPassword != nil {
			t.Errorf("user %s has a plaintext <password>", name)
		}
		if u.PasswordSHA256 == nil || (u.PasswordSHA256.FromEnv == "" && !hex64.MatchString(u.PasswordSHA256.Value)) {
			t.Errorf("user %s: want <password_sha256_hex> read from_env or holding 64 hex digits", name)
		}
		if _, ok := f.profile(u.Profile); !ok {
			t.Errorf("user %s uses profile %q, which the file does not define", name, u.Profile)
		}
		if len(u.Networks.IP) == 0 {
			t.Errorf("user %s lists no networks", name)
		}
		// ClickHouse rejects grants together with these, and they would widen the access.
		if u.AccessManagement != "" || u.AllowDatabases != nil {
			t.Errorf("user %s combines grants with access_management or allow_databases", name)
		}
	}
	if f.user(t, "tisync").Profile != "tisync" || f.user(t, "tisync_reader").Profile != "tisync_reader" {
		t.Error("users tisync and tisync_reader must use the profiles of the same names")
	}
}

// xmlGrants returns the grants of a user of the users file.
func xmlGrants(t *testing.T, u chUser) []privilegeGrant {
	t.Helper()
	var out []privilegeGrant
	for _, q := range u.Grants.Query {
		grants, grantees, err := parseGrant(q)
		if err != nil {
			t.Errorf("user %s: %v", u.XMLName.Local, err)
			continue
		}
		if len(grantees) > 0 {
			t.Errorf("user %s: grant %q names grantees, which a users file must not", u.XMLName.Local, q)
		}
		out = append(out, grants...)
	}
	return out
}

func TestClickHouseSinkGrants(t *testing.T) {
	f := loadClickHouseUsers(t)
	required := sortedGrants(requiredSinkGrants(t))
	sink := xmlGrants(t, f.user(t, "tisync"))
	for _, g := range sink {
		if strings.HasPrefix(g.privilege, "ALL") {
			t.Errorf("user tisync has %s", g)
		}
		for _, risky := range []string{"DROP", "TRUNCATE", "ALTER", "OPTIMIZE", "SYSTEM", "ACCESS MANAGEMENT", "KILL"} {
			if strings.HasPrefix(g.privilege, risky) {
				t.Errorf("user tisync has %s, which no statement of tisync needs", g)
			}
		}
	}
	if got := sortedGrants(sink); !slices.Equal(got, required) {
		t.Errorf("user tisync has %v, want exactly what tisync's statements need: %v", got, required)
	}
	reader := sortedGrants(xmlGrants(t, f.user(t, "tisync_reader")))
	if want := []string{"SELECT ON " + sinkDatabase + ".*"}; !slices.Equal(reader, want) {
		t.Errorf("user tisync_reader has %v, want %v", reader, want)
	}
}

// sqlStatements splits a SQL script into statements, dropping -- comments.
func sqlStatements(script string) []string {
	var lines []string
	for _, line := range strings.Split(script, "\n") {
		if i := strings.Index(line, "--"); i >= 0 {
			line = line[:i]
		}
		lines = append(lines, line)
	}
	var out []string
	for _, s := range strings.Split(strings.Join(lines, "\n"), ";") {
		if s = strings.Join(strings.Fields(s), " "); s != "" {
			out = append(out, s)
		}
	}
	return out
}

func TestClickHouseRBACMatchesUsersFile(t *testing.T) {
	statements := sqlStatements(string(readRepoFile(t, clickhouseRBACFile)))
	roleGrants := map[string][]privilegeGrant{}
	userRoles := map[string][]string{}
	userProfile := map[string]string{}
	profileSettings := map[string]map[string]string{}

	createUser := regexp.MustCompile(`^CREATE USER IF NOT EXISTS (\w+) IDENTIFIED WITH sha256_hash BY '([^']*)'.* SETTINGS PROFILE '(\w+)'$`)
	createProfile := regexp.MustCompile(`^CREATE SETTINGS PROFILE IF NOT EXISTS (\w+) SETTINGS (.+)$`)
	grantRole := regexp.MustCompile(`^GRANT (\w+) TO (\w+)$`)
	setting := regexp.MustCompile(`^(\w+) = ('[^']*'|\S+)`)
	for _, stmt := range statements {
		switch {
		case strings.HasPrefix(stmt, "CREATE ROLE"), strings.HasPrefix(stmt, "ALTER USER"):
		case createUser.MatchString(stmt):
			m := createUser.FindStringSubmatch(stmt)
			userProfile[m[1]] = m[3]
			if !strings.HasPrefix(m[2], "REPLACE_WITH_") {
				t.Errorf("user %s: the password hash %q is not a placeholder: keep real hashes out of the repository", m[1], m[2])
			}
		case createProfile.MatchString(stmt):
			m := createProfile.FindStringSubmatch(stmt)
			settings := map[string]string{}
			for _, part := range strings.Split(m[2], ",") {
				s := setting.FindStringSubmatch(strings.TrimSpace(part))
				if s == nil {
					t.Errorf("profile %s: cannot read setting %q", m[1], part)
					continue
				}
				settings[s[1]] = strings.Trim(s[2], "'")
			}
			profileSettings[m[1]] = settings
		case grantRole.MatchString(stmt):
			m := grantRole.FindStringSubmatch(stmt)
			userRoles[m[2]] = append(userRoles[m[2]], m[1])
		case strings.HasPrefix(stmt, "GRANT "):
			grants, grantees, err := parseGrant(stmt)
			if err != nil {
				t.Error(err)
				continue
			}
			for _, g := range grantees {
				roleGrants[g] = append(roleGrants[g], grants...)
			}
		default:
			t.Errorf("%s: statement this test does not read: %s", clickhouseRBACFile, stmt)
		}
	}

	f := loadClickHouseUsers(t)
	for _, name := range []string{"tisync", "tisync_reader"} {
		var sqlGrants []privilegeGrant
		for _, role := range userRoles[name] {
			sqlGrants = append(sqlGrants, roleGrants[role]...)
		}
		sqlGrants = append(sqlGrants, roleGrants[name]...)
		if got, want := sortedGrants(sqlGrants), sortedGrants(xmlGrants(t, f.user(t, name))); !slices.Equal(got, want) {
			t.Errorf("user %s: %s grants %v, %s grants %v", name, clickhouseRBACFile, got, clickhouseUsersFile, want)
		}

		profile := userProfile[name]
		if profile != f.user(t, name).Profile {
			t.Errorf("user %s: profile %q in %s, %q in %s", name, profile, clickhouseRBACFile, f.user(t, name).Profile, clickhouseUsersFile)
		}
		xmlSettings, _ := f.profile(profile)
		for key, value := range profileSettings[profile] {
			if got := strings.TrimSpace(xmlSettings[key].Value); got != value {
				t.Errorf("profile %s: %s = %s in %s, %q in %s", profile, key, value, clickhouseRBACFile, got, clickhouseUsersFile)
			}
		}
		for key, s := range xmlSettings {
			if _, ok := profileSettings[profile][key]; !ok && key != "constraints" && len(s.Inner) == 0 {
				t.Errorf("profile %s: %s is set in %s but not in %s", profile, key, clickhouseUsersFile, clickhouseRBACFile)
			}
		}
	}
}

func TestClickHouseGrantParser(t *testing.T) {
	grants, grantees, err := parseGrant("GRANT CREATE TABLE,  insert ON tisync.* TO a, b")
	if err != nil {
		t.Fatal(err)
	}
	if got := sortedGrants(grants); !slices.Equal(got, []string{"CREATE TABLE ON tisync.*", "INSERT ON tisync.*"}) {
		t.Errorf("grants %v", got)
	}
	if !slices.Equal(grantees, []string{"a", "b"}) {
		t.Errorf("grantees %v", grantees)
	}
	if _, _, err := parseGrant("REVOKE SELECT ON tisync.* FROM a"); err == nil {
		t.Error("parseGrant accepted a REVOKE")
	}
}
