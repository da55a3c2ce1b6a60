// kstatus prints how sigs.k8s.io/cli-utils' kstatus judges Kubernetes objects, as Flux does.
//
// Usage: kstatus [FILE...]   (no FILE, or "-": standard input)
//
// Each input holds one or more YAML or JSON documents; for each object it prints one JSON line
// {"name": ..., "status": "InProgress|Current|Failed|Terminating|NotFound|Unknown", "message": ...}.
// Exit status 1 when an input cannot be read or parsed, or an object cannot be judged (the
// other inputs are still judged).
package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/cli-utils/pkg/kstatus/status"
)

type verdict struct {
	Name    string `json:"name"`
	Status  string `json:"status"`
	Message string `json:"message"`
}

func judge(source string, in io.Reader, out *json.Encoder) error {
	decoder := utilyaml.NewYAMLOrJSONDecoder(bufio.NewReader(in), 4096)
	for index := 0; ; index++ {
		var raw json.RawMessage
		if err := decoder.Decode(&raw); err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return fmt.Errorf("%s: document %d: %w", source, index+1, err)
		}
		if len(raw) == 0 || string(raw) == "null" {
			continue // an empty document
		}
		// Unstructured's own JSON decoding keeps integers as int64, which kstatus requires.
		u := &unstructured.Unstructured{}
		if err := u.UnmarshalJSON(raw); err != nil {
			return fmt.Errorf("%s: document %d: %w", source, index+1, err)
		}
		result, err := status.Compute(u)
		if err != nil {
			return fmt.Errorf("%s: document %d (%s %s): %w", source, index+1, u.GetKind(), u.GetName(), err)
		}
		if err := out.Encode(verdict{Name: u.GetName(), Status: result.Status.String(), Message: result.Message}); err != nil {
			return err
		}
	}
}

func main() {
	paths := os.Args[1:]
	if len(paths) == 0 {
		paths = []string{"-"}
	}
	out := json.NewEncoder(os.Stdout)
	failed := false
	for _, path := range paths {
		var err error
		if path == "-" {
			err = judge("stdin", os.Stdin, out)
		} else {
			var file *os.File
			if file, err = os.Open(path); err == nil {
				err = judge(path, file, out)
				file.Close()
			}
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "kstatus:", err)
			failed = true
		}
	}
	if failed {
		os.Exit(1)
	}
}
