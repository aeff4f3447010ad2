package cli

import (
	"strings"
	"testing"
)

// TestTrainingOrder: --train becomes the train example's arguments and a
// training run's defaults, flags given explicitly win, bad specs are
// refused with the reason.
func TestTrainingOrder(t *testing.T) {
	none := func(string) bool { return false }
	sf := &jobSubmitFlags{train: "tiny,20,7,lr=0.001,batch=4", gas: 1, memoryPages: 256, interval: 1000}
	if err := sf.trainingOrder(none); err != nil {
		t.Fatal(err)
	}
	if sf.example != "train" || strings.Join(sf.args, " ") != "tiny 20 7 lr=0.001 batch=4" || sf.memoryPages != 2048 || sf.interval != 1 || sf.gas != 21*tinyStepGas {
		t.Fatalf("order: %+v", sf)
	}
	sf = &jobSubmitFlags{train: "tiny,5,warmup=2", gas: 123, memoryPages: 4096, interval: 2}
	if err := sf.trainingOrder(func(f string) bool { return f != "args" }); err != nil {
		t.Fatal(err)
	}
	if strings.Join(sf.args, " ") != "tiny 5 1 warmup=2" || sf.gas != 123 || sf.memoryPages != 4096 || sf.interval != 2 {
		t.Fatalf("explicit flags: %+v", sf)
	}
	for _, c := range []struct{ spec, want string }{
		{"tiny", "want PRESET,STEPS"},
		{"huge,3", `unknown preset "huge"`},
		{"tiny,0", `steps "0"`},
		{"tiny,3,x", `seed "x"`},
		{"tiny,3,1,momentum=1", "unknown"},
		{"tiny,3,1,lr=-1", "finite number"},
		{"small,3", "give --gas"},
	} {
		sf := &jobSubmitFlags{train: c.spec}
		if err := sf.trainingOrder(none); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("--train %s: got %v, want %q", c.spec, err, c.want)
		}
	}
	sf = &jobSubmitFlags{train: "tiny,3", example: "echo"}
	if err := sf.trainingOrder(none); err == nil || !strings.Contains(err.Error(), "give no --example") {
		t.Errorf("--train with --example: %v", err)
	}
}
