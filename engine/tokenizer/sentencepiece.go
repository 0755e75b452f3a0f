package tokenizer

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"

	"github.com/mole-llm/mole/loader"
)

// This file reads SentencePiece's tokenizer.model: a serialized protobuf
// ModelProto. mole has no protobuf dependency, so the wire format is decoded
// by hand. Only the fields that influence encoding/decoding are kept; every
// other field is skipped by wire type, which keeps the reader forward
// compatible with newer SentencePiece versions. Every length is bounds
// checked, so malformed input returns an error and never panics
// (FuzzParseSentencePiece checks that).

// Piece types of ModelProto.SentencePiece.Type. GGUF's tokenizer.ggml.token_type
// uses the same numbering, so both sources share these constants.
const (
	typeNormal      = 1
	typeUnknown     = 2
	typeControl     = 3
	typeUserDefined = 4
	typeUnused      = 5
	typeByte        = 6
)

// SentencePiece TrainerSpec.ModelType values.
const (
	spmUnigram = 1
	spmBPE     = 2
	spmWord    = 3
	spmChar    = 4
)

// spModel is the decoded subset of a ModelProto.
type spModel struct {
	pieces []string
	scores []float32
	types  []int32

	modelType      int
	byteFallback   bool
	treatWSSuffix  bool
	unkID          int32
	bosID          int32
	eosID          int32
	padID          int32
	unkSurface     string
	normalizerName string
	charsmapLen    int // length of precompiled_charsmap; non-zero means a normalisation table mole does not apply

	addDummyPrefix   bool
	removeExtraSpace bool
	escapeWS         bool
}

// pbReader walks one protobuf message.
type pbReader struct {
	b   []byte
	off int
}

var errTruncated = errors.New("truncated protobuf")

func (r *pbReader) varint() (uint64, error) {
	var v uint64
	for shift := uint(0); shift < 64; shift += 7 {
		if r.off >= len(r.b) {
			return 0, errTruncated
		}
		c := r.b[r.off]
		r.off++
		v |= uint64(c&0x7f) << shift
		if c < 0x80 {
			return v, nil
		}
	}
	return 0, errors.New("protobuf varint too long")
}

// next returns the field number, wire type and, for length-delimited fields,
// the payload; for varint/fixed fields the value is in val.
func (r *pbReader) next() (field int, wire int, val uint64, payload []byte, err error) {
	key, err := r.varint()
	if err != nil {
		return 0, 0, 0, nil, err
	}
	field, wire = int(key>>3), int(key&7)
	if field == 0 {
		return 0, 0, 0, nil, errors.New("protobuf field number 0")
	}
	switch wire {
	case 0:
		val, err = r.varint()
	case 1:
		if len(r.b)-r.off < 8 {
			return 0, 0, 0, nil, errTruncated
		}
		val = binary.LittleEndian.Uint64(r.b[r.off:])
		r.off += 8
	case 2:
		var n uint64
		n, err = r.varint()
		if err == nil && n > uint64(len(r.b)-r.off) {
			err = errTruncated
		}
		if err == nil {
			payload = r.b[r.off : r.off+int(n)]
			r.off += int(n)
		}
	case 5:
		if len(r.b)-r.off < 4 {
			return 0, 0, 0, nil, errTruncated
		}
		val = uint64(binary.LittleEndian.Uint32(r.b[r.off:]))
		r.off += 4
	default:
		// Groups (3, 4) are deprecated and never used by SentencePiece.
		err = fmt.Errorf("unsupported protobuf wire type %d (field %d)", wire, field)
	}
	return field, wire, val, payload, err
}

// parseSentencePiece decodes a ModelProto.
func parseSentencePiece(data []byte) (*spModel, error) {
	m := &spModel{
		// proto2 defaults of TrainerSpec / NormalizerSpec
		modelType: spmUnigram, unkID: 0, bosID: 1, eosID: 2, padID: -1,
		unkSurface:     " \u2047 ",
		addDummyPrefix: true, removeExtraSpace: true, escapeWS: true,
	}
	r := &pbReader{b: data}
	for r.off < len(r.b) {
		field, wire, _, payload, err := r.next()
		if err != nil {
			return nil, fmt.Errorf("sentencepiece: %w", err)
		}
		if wire != 2 {
			continue
		}
		switch field {
		case 1:
			if err := m.parsePiece(payload); err != nil {
				return nil, err
			}
		case 2:
			if err := m.parseTrainer(payload); err != nil {
				return nil, err
			}
		case 3:
			if err := m.parseNormalizer(payload); err != nil {
				return nil, err
			}
		}
	}
	if len(m.pieces) == 0 {
		return nil, errors.New("sentencepiece: model has no pieces")
	}
	return m, nil
}

func (m *spModel) parsePiece(b []byte) error {
	r := &pbReader{b: b}
	piece, score, typ := "", float32(0), int32(typeNormal)
	for r.off < len(r.b) {
		field, wire, val, payload, err := r.next()
		if err != nil {
			return fmt.Errorf("sentencepiece: piece %d: %w", len(m.pieces), err)
		}
		switch {
		case field == 1 && wire == 2:
			piece = string(payload)
		case field == 2 && wire == 5:
			score = math.Float32frombits(uint32(val))
		case field == 3 && wire == 0:
			typ = int32(val)
		}
	}
	if typ < typeNormal || typ > typeByte {
		return fmt.Errorf("sentencepiece: piece %d (%s) has unknown type %d", len(m.pieces), loader.Quote(piece), typ)
	}
	m.pieces = append(m.pieces, piece)
	m.scores = append(m.scores, score)
	m.types = append(m.types, typ)
	return nil
}

func (m *spModel) parseTrainer(b []byte) error {
	r := &pbReader{b: b}
	for r.off < len(r.b) {
		field, wire, val, payload, err := r.next()
		if err != nil {
			return fmt.Errorf("sentencepiece: trainer_spec: %w", err)
		}
		if wire == 0 {
			// int32 fields are sign-extended to 64 bits on the wire.
			i := int32(int64(val))
			switch field {
			case 3:
				m.modelType = int(i)
			case 24:
				m.treatWSSuffix = val != 0
			case 35:
				m.byteFallback = val != 0
			case 40:
				m.unkID = i
			case 41:
				m.bosID = i
			case 42:
				m.eosID = i
			case 43:
				m.padID = i
			}
		} else if wire == 2 && field == 44 {
			m.unkSurface = string(payload)
		}
	}
	return nil
}

func (m *spModel) parseNormalizer(b []byte) error {
	r := &pbReader{b: b}
	for r.off < len(r.b) {
		field, wire, val, payload, err := r.next()
		if err != nil {
			return fmt.Errorf("sentencepiece: normalizer_spec: %w", err)
		}
		switch {
		case field == 1 && wire == 2:
			m.normalizerName = string(payload)
		case field == 2 && wire == 2:
			m.charsmapLen = len(payload)
		case field == 3 && wire == 0:
			m.addDummyPrefix = val != 0
		case field == 4 && wire == 0:
			m.removeExtraSpace = val != 0
		case field == 5 && wire == 0:
			m.escapeWS = val != 0
		}
	}
	return nil
}

// FromSentencePiece builds a Tokenizer from the bytes of a SentencePiece
// tokenizer.model. BPE and Unigram models are supported; the precompiled
// normalisation table (nmt_nfkc) is not applied, which only matters for text
// that NFKC would change (Llama/Mistral models use the identity normaliser).
func FromSentencePiece(model []byte) (*Tokenizer, error) {
	m, err := parseSentencePiece(model)
	if err != nil {
		return nil, err
	}
	switch m.modelType {
	case spmBPE, spmUnigram:
	default:
		return nil, fmt.Errorf("sentencepiece: model_type %d (WORD=3/CHAR=4) is not supported", m.modelType)
	}
	if m.treatWSSuffix {
		return nil, errors.New("sentencepiece: treat_whitespace_as_suffix is not supported")
	}
	n := int32(len(m.pieces))
	id := func(i int32) int32 {
		if i < 0 || i >= n {
			return -1
		}
		return i
	}
	t := &Tokenizer{
		kind:         kindSPM,
		tokens:       m.pieces,
		scores:       m.scores,
		types:        m.types,
		unigram:      m.modelType == spmUnigram,
		byteFallback: m.byteFallback,
		addPrefix:    m.addDummyPrefix,
		collapseWS:   m.removeExtraSpace,
		escapeWS:     m.escapeWS,
		unkSurface:   m.unkSurface,
		bos:          id(m.bosID),
		eos:          id(m.eosID),
		unk:          id(m.unkID),
		pad:          id(m.padID),
		addBOS:       true, // SentencePiece-based models (Llama, Mistral) prepend BOS
	}
	if err := t.init(); err != nil {
		return nil, err
	}
	return t, nil
}
