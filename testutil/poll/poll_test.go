package poll

import (
	"errors"
	"fmt"
	"testing"
	"time"
)

func TestWait(t *testing.T) {
	n := 0
	if err := Wait(5*time.Second, func() (bool, string) { n++; return n == 3, fmt.Sprint("n=", n) }); err != nil {
		t.Fatal(err)
	}
	if n != 3 {
		t.Fatalf("polled %d times, want 3", n)
	}
	err := Wait(60*time.Millisecond, func() (bool, string) { return false, "still 7" })
	var te *TimeoutError
	if !errors.As(err, &te) || err.Error() != "not within 60ms (last: still 7)" {
		t.Fatalf("err = %v", err)
	}
	if err := Wait(0, func() (bool, string) { return false, "" }); err == nil || err.Error() != "not within 0s" {
		t.Fatalf("err = %v", err)
	}
}
