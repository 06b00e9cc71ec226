package dojobtest

import (
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

func TestFaultString(t *testing.T) {
	for _, c := range []struct {
		f    Fault
		want string
	}{
		{Fault{}, "OK"},
		{OK(), "OK"},
		{Status(404), "Status(404)"},
		{StatusRetryAfter(503, "120"), `StatusRetryAfter(503, "120")`},
		{DropAfter(100), "DropAfter(100)"},
		{StallAfter(0), "StallAfter(0)"},
		{StallHeaders(), "StallHeaders"},
		{IgnoreRange(), "IgnoreRange"},
		{ChangeContent(), "ChangeContent"},
		{Delay(1500 * time.Millisecond), "Delay(1.5s)"},
		{Drip(1000), "Drip(1000)"},
		{ChangeContent().And(DropAfter(100)), "ChangeContent+DropAfter(100)"},
		// Listed in the order the parts take effect, whatever the order of And.
		{DropAfter(5).And(Drip(10)).And(IgnoreRange()).And(Delay(time.Second)).And(ChangeContent()),
			"ChangeContent+Delay(1s)+IgnoreRange+Drip(10)+DropAfter(5)"},
	} {
		assert.Equal(t, c.want, c.f.String())
	}
}

func TestFaultAnd(t *testing.T) {
	// g's values override f's; flags add up.
	f := StatusRetryAfter(503, "1").And(Status(500))
	assert.Equal(t, Status(500), f, "a status replaces the status and its Retry-After")
	assert.Equal(t, DropAfter(7), DropAfter(3).And(DropAfter(7)))
	assert.Equal(t, Delay(2*time.Second), Delay(time.Second).And(Delay(2*time.Second)))
	assert.Equal(t, Delay(time.Second), Delay(time.Second).And(OK()), "OK changes nothing")
	assert.Equal(t, Drip(5), OK().And(Drip(5)))

	both := IgnoreRange().And(StallHeaders())
	assert.True(t, both.ignoreRange)
	assert.True(t, both.stallHeaders)
	assert.True(t, ChangeContent().And(IgnoreRange()).changeContent)
}

func TestFaultCut(t *testing.T) {
	for _, c := range []struct {
		f             Fault
		limit         int64
		stall, cutted bool
	}{
		{OK(), 0, false, false},
		{DropAfter(10), 10, false, true},
		{StallAfter(10), 10, true, true},
		{DropAfter(10).And(StallAfter(20)), 10, false, true},
		{DropAfter(20).And(StallAfter(10)), 10, true, true},
		{DropAfter(10).And(StallAfter(10)), 10, true, true}, // stall wins a tie
	} {
		limit, stall, ok := c.f.cut()
		assert.Equal(t, c.cutted, ok, c.f.String())
		if ok {
			assert.Equal(t, c.limit, limit, c.f.String())
			assert.Equal(t, c.stall, stall, c.f.String())
		}
	}
}

func TestInvalidArgumentsPanic(t *testing.T) {
	for name, fn := range map[string]func(){
		"Status(99)":     func() { Status(99) },
		"Status(1000)":   func() { Status(1000) },
		"Status(101)":    func() { Status(http.StatusSwitchingProtocols) },
		"DropAfter(-1)":  func() { DropAfter(-1) },
		"StallAfter(-1)": func() { StallAfter(-1) },
		"Delay(-1)":      func() { Delay(-1) },
		"Drip(0)":        func() { Drip(0) },
		"WithSize(-1)":   func() { WithSize(-1) },
		"WithRate(-1)":   func() { WithRate(-1) },
	} {
		assert.Panics(t, fn, name)
	}
	assert.NotPanics(t, func() { Status(200); WithRate(0); WithSize(0); Delay(0) })
}

func TestScriptIsCopied(t *testing.T) {
	faults := []Fault{Status(500)}
	opt := Script(faults...)
	faults[0] = OK()
	c := newConfig([]Option{opt})
	assert.Equal(t, Status(500), c.fault("/x", 0))
	assert.Equal(t, OK(), c.fault("/x", 1))
}
