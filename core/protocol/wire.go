package protocol

import (
	"time"

	"fmt"
	"math/big"

	"github.com/zclconf/go-cty/cty"
	ctyjson "github.com/zclconf/go-cty/cty/json"
	ctymsgpack "github.com/zclconf/go-cty/cty/msgpack"

	"github.com/vmflow/vmflow/core/protocol/pb"
)

// EncodeValue encodes v, of type ty, for the wire.
func EncodeValue(v cty.Value, ty cty.Type) (*pb.DynamicValue, error) {
	b, err := ctymsgpack.Marshal(v, ty)
	if err != nil {
		return nil, err
	}
	return &pb.DynamicValue{Msgpack: b}, nil
}

// DecodeValue decodes a wire value of type ty. A missing value is null.
func DecodeValue(dv *pb.DynamicValue, ty cty.Type) (cty.Value, error) {
	if dv == nil || len(dv.Msgpack) == 0 {
		return cty.NullVal(ty), nil
	}
	return ctymsgpack.Unmarshal(dv.Msgpack, ty)
}

func attributesToPB(as Attributes) ([]*pb.Attribute, error) {
	out := make([]*pb.Attribute, 0, len(as))
	for _, a := range as {
		tb, err := ctyjson.MarshalType(a.Type)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", a.Name, err)
		}
		pa := &pb.Attribute{Name: a.Name, Type: tb, Required: a.Required, Description: a.Description, Sensitive: a.Sensitive}
		if a.Default != cty.NilVal {
			if pa.Default, err = EncodeValue(a.Default, a.Type); err != nil {
				return nil, fmt.Errorf("%s: default: %w", a.Name, err)
			}
		}
		out = append(out, pa)
	}
	return out, nil
}

func attributesFromPB(pas []*pb.Attribute) (Attributes, error) {
	out := make(Attributes, 0, len(pas))
	for _, pa := range pas {
		ty, err := ctyjson.UnmarshalType(pa.Type)
		if err != nil {
			return nil, fmt.Errorf("%s: type: %w", pa.Name, err)
		}
		a := Attribute{Name: pa.Name, Type: ty, Required: pa.Required, Description: pa.Description, Sensitive: pa.Sensitive}
		if pa.Default != nil {
			if a.Default, err = DecodeValue(pa.Default, ty); err != nil {
				return nil, fmt.Errorf("%s: default: %w", pa.Name, err)
			}
		}
		out = append(out, a)
	}
	return out, nil
}

// SchemaToPB converts a schema for the wire.
func SchemaToPB(s *Schema) (*pb.DescribeResponse, error) {
	cfg, err := attributesToPB(s.Config)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	resp := &pb.DescribeResponse{Name: s.Name, Version: s.Version, Description: s.Description, Config: cfg}
	for _, a := range s.Actions {
		in, err := attributesToPB(a.Inputs)
		if err != nil {
			return nil, fmt.Errorf("action %s: %w", a.Name, err)
		}
		out, err := attributesToPB(a.Outputs)
		if err != nil {
			return nil, fmt.Errorf("action %s: %w", a.Name, err)
		}
		resp.Actions = append(resp.Actions, &pb.Action{Name: a.Name, Description: a.Description, Inputs: in, Outputs: out, HasUndo: a.HasUndo, Interactive: a.Interactive, TimeoutMs: a.Timeout.Milliseconds()})
	}
	return resp, nil
}

// SchemaFromPB converts a schema from the wire and checks it.
func SchemaFromPB(r *pb.DescribeResponse) (*Schema, error) {
	cfg, err := attributesFromPB(r.Config)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	s := &Schema{Name: r.Name, Version: r.Version, Description: r.Description, Config: cfg}
	for _, pa := range r.Actions {
		in, err := attributesFromPB(pa.Inputs)
		if err != nil {
			return nil, fmt.Errorf("action %s: %w", pa.Name, err)
		}
		out, err := attributesFromPB(pa.Outputs)
		if err != nil {
			return nil, fmt.Errorf("action %s: %w", pa.Name, err)
		}
		s.Actions = append(s.Actions, Action{Name: pa.Name, Description: pa.Description, Inputs: in, Outputs: out, HasUndo: pa.HasUndo, Interactive: pa.Interactive, Timeout: time.Duration(pa.TimeoutMs) * time.Millisecond})
	}
	if err := s.Check(); err != nil {
		return nil, fmt.Errorf("invalid schema: %w", err)
	}
	return s, nil
}

func pathToPB(p cty.Path) *pb.AttributePath {
	if len(p) == 0 {
		return nil
	}
	out := &pb.AttributePath{}
	for _, s := range p {
		switch s := s.(type) {
		case cty.GetAttrStep:
			out.Steps = append(out.Steps, &pb.AttributePath_Step{Selector: &pb.AttributePath_Step_AttributeName{AttributeName: s.Name}})
		case cty.IndexStep:
			if s.Key.Type() == cty.String {
				out.Steps = append(out.Steps, &pb.AttributePath_Step{Selector: &pb.AttributePath_Step_ElementKeyString{ElementKeyString: s.Key.AsString()}})
			} else if s.Key.Type() == cty.Number {
				i, _ := s.Key.AsBigFloat().Int64()
				out.Steps = append(out.Steps, &pb.AttributePath_Step{Selector: &pb.AttributePath_Step_ElementKeyInt{ElementKeyInt: i}})
			}
		}
	}
	return out
}

func pathFromPB(p *pb.AttributePath) cty.Path {
	if p == nil {
		return nil
	}
	var out cty.Path
	for _, s := range p.Steps {
		switch sel := s.Selector.(type) {
		case *pb.AttributePath_Step_AttributeName:
			out = out.GetAttr(sel.AttributeName)
		case *pb.AttributePath_Step_ElementKeyString:
			out = out.Index(cty.StringVal(sel.ElementKeyString))
		case *pb.AttributePath_Step_ElementKeyInt:
			out = out.Index(cty.NumberVal(new(big.Float).SetInt64(sel.ElementKeyInt)))
		}
	}
	return out
}

// DiagnosticsToPB converts diagnostics for the wire.
func DiagnosticsToPB(ds Diagnostics) []*pb.Diagnostic {
	out := make([]*pb.Diagnostic, 0, len(ds))
	for _, d := range ds {
		sev := pb.Diagnostic_ERROR
		if d.Severity == Warning {
			sev = pb.Diagnostic_WARNING
		}
		out = append(out, &pb.Diagnostic{Severity: sev, Summary: d.Summary, Detail: d.Detail, Attribute: pathToPB(d.Path)})
	}
	return out
}

// DiagnosticsFromPB converts diagnostics from the wire.
func DiagnosticsFromPB(pds []*pb.Diagnostic) Diagnostics {
	out := make(Diagnostics, 0, len(pds))
	for _, d := range pds {
		sev := Error
		if d.Severity == pb.Diagnostic_WARNING {
			sev = Warning
		}
		out = append(out, Diagnostic{Severity: sev, Summary: d.Summary, Detail: d.Detail, Path: pathFromPB(d.Attribute)})
	}
	return out
}
