// Command crdcheck judges a CRD and sample objects with the API server's own code, in process:
// CRD validation (structural schema, CEL compilation and cost limits), then, for each sample,
// pruning, defaulting, OpenAPI validation and CEL validation as on a create.
//
//	crdcheck CRD.yaml SAMPLES.json > RESULT.json
//
// SAMPLES.json maps a name to an object; RESULT.json holds the CRD's errors and, per sample,
// its errors and its spec after pruning and defaulting.
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"

	"k8s.io/apiextensions-apiserver/pkg/apis/apiextensions"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/validation"
	structuralschema "k8s.io/apiextensions-apiserver/pkg/apiserver/schema"
	"k8s.io/apiextensions-apiserver/pkg/apiserver/schema/cel"
	structuraldefaulting "k8s.io/apiextensions-apiserver/pkg/apiserver/schema/defaulting"
	structuralpruning "k8s.io/apiextensions-apiserver/pkg/apiserver/schema/pruning"
	apiservervalidation "k8s.io/apiextensions-apiserver/pkg/apiserver/validation"
	"k8s.io/apimachinery/pkg/runtime"
	utiljson "k8s.io/apimachinery/pkg/util/json"
	celconfig "k8s.io/apiserver/pkg/apis/cel"
	"sigs.k8s.io/yaml"
)

type sampleResult struct {
	Errors []string    `json:"errors"`
	Spec   interface{} `json:"spec"`
	// Fields the schema does not know, pruned: the API server refuses a request holding any under
	// fieldValidation=Strict (kubectl's default) and answers Warn's warning header otherwise.
	UnknownFields []string `json:"unknownFields"`
}

type result struct {
	CRDErrors []string                `json:"crdErrors"`
	Samples   map[string]sampleResult `json:"samples"`
}

func main() {
	if len(os.Args) != 3 {
		fmt.Fprintln(os.Stderr, "usage: crdcheck CRD.yaml SAMPLES.json")
		os.Exit(2)
	}
	crd, err := readCRD(os.Args[1])
	check(err)
	out := result{CRDErrors: []string{}, Samples: map[string]sampleResult{}}
	for _, e := range validation.ValidateCustomResourceDefinition(context.Background(), crd) {
		out.CRDErrors = append(out.CRDErrors, e.Error())
	}
	if len(out.CRDErrors) == 0 {
		check(judgeSamples(crd, os.Args[2], &out))
	}
	check(json.NewEncoder(os.Stdout).Encode(out))
}

func readCRD(path string) (*apiextensions.CustomResourceDefinition, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var v1 apiextensionsv1.CustomResourceDefinition
	if err := yaml.UnmarshalStrict(data, &v1); err != nil {
		return nil, err
	}
	apiextensionsv1.SetObjectDefaults_CustomResourceDefinition(&v1)
	scheme := runtime.NewScheme()
	if err := apiextensionsv1.AddToScheme(scheme); err != nil {
		return nil, err
	}
	if err := apiextensions.AddToScheme(scheme); err != nil {
		return nil, err
	}
	var crd apiextensions.CustomResourceDefinition
	err = scheme.Convert(&v1, &crd, nil)
	return &crd, err
}

func judgeSamples(crd *apiextensions.CustomResourceDefinition, path string, out *result) error {
	// With a single version the internal form keeps the schema at the top level.
	props := crd.Spec.Validation.OpenAPIV3Schema
	if props == nil {
		props = crd.Spec.Versions[0].Schema.OpenAPIV3Schema
	}
	structural, err := structuralschema.NewStructural(props)
	if err != nil {
		return err
	}
	validator, _, err := apiservervalidation.NewSchemaValidator(props)
	if err != nil {
		return err
	}
	rules := cel.NewValidator(structural, true, celconfig.PerCallLimit)
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	var samples map[string]map[string]interface{}
	// The API server's decoder: whole numbers become int64, as CEL expects.
	if err := utiljson.Unmarshal(data, &samples); err != nil {
		return err
	}
	for name, obj := range samples {
		unknown := structuralpruning.PruneWithOptions(obj, structural, true, structuralschema.UnknownFieldPathOptions{TrackUnknownFieldPaths: true})
		if unknown == nil {
			unknown = []string{}
		}
		structuraldefaulting.Default(obj, structural)
		errs := apiservervalidation.ValidateCustomResource(nil, obj, validator)
		celErrs, _ := rules.Validate(context.Background(), nil, structural, obj, nil, celconfig.RuntimeCELCostBudget)
		judged := sampleResult{Errors: []string{}, Spec: obj["spec"], UnknownFields: unknown}
		for _, e := range append(errs, celErrs...) {
			judged.Errors = append(judged.Errors, e.Error())
		}
		out.Samples[name] = judged
	}
	return nil
}

func check(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, "crdcheck:", err)
		os.Exit(1)
	}
}
