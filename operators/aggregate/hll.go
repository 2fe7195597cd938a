package aggregate

import (
	"encoding/binary"
	"errors"
	"math"
	"math/bits"
	"slices"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/zeebo/xxh3"
)

// Sketch is approx_count_distinct's state: a HyperLogLog of precision
// Precision (m = 4096 registers, standard error 1.04/√m ≈ 1.6%) with
// LogLog-Beta's estimate (Estimate). Below
// SparseLimit distinct values it keeps the 64-bit hashes themselves and
// counts exactly (up to hash collisions, negligible at 64 bits), so small
// groups, the common case per entity, cost little memory and have no error.
// Sketches merge (tiles store and combine them) and serialize.
type Sketch struct {
	sparse []uint64 // sorted distinct hashes while len ≤ SparseLimit
	regs   []uint8  // dense registers once beyond
}

const (
	// Precision is the number of index bits of the dense registers.
	Precision = 12
	// SparseLimit is the largest distinct count kept exactly.
	SparseLimit = 512
	m           = 1 << Precision
)

// Add records one hashed value.
func (s *Sketch) Add(h uint64) {
	if s.regs != nil {
		s.addDense(h)
		return
	}
	i, found := slices.BinarySearch(s.sparse, h)
	if found {
		return
	}
	s.sparse = slices.Insert(s.sparse, i, h)
	if len(s.sparse) > SparseLimit {
		s.densify()
	}
}

func (s *Sketch) addDense(h uint64) {
	idx := h >> (64 - Precision)
	rank := uint8(bits.LeadingZeros64(h<<Precision|1<<(Precision-1))) + 1
	if rank > s.regs[idx] {
		s.regs[idx] = rank
	}
}

func (s *Sketch) densify() {
	s.regs = make([]uint8, m)
	for _, h := range s.sparse {
		s.addDense(h)
	}
	s.sparse = nil
}

// Merge folds o into s: the sketch of the union of both inputs.
func (s *Sketch) Merge(o *Sketch) {
	if o.regs == nil {
		for _, h := range o.sparse {
			s.Add(h)
		}
		return
	}
	if s.regs == nil {
		s.densify()
	}
	for i, r := range o.regs {
		s.regs[i] = max(s.regs[i], r)
	}
}

// Estimate returns the distinct count: exact while sparse, else
// LogLog-Beta's estimate (Qin, Kim and Tung, "LogLog-Beta and More: A New
// Algorithm for Cardinality Estimation Based on LogLog Counting", 2016,
// arXiv:1612.02284): the raw HyperLogLog estimate with the number of empty
// registers ez corrected by β(ez), a polynomial in ln(ez + 1) fitted for
// each precision. One formula over the whole range, so no bias where the
// raw estimate used to take over from linear counting (+1.4–2.4 % from
// 2.4× to 3× m before; TestApproxCountDistinctBias, docs/TILES.md).
func (s *Sketch) Estimate() int64 {
	if s.regs == nil {
		return int64(len(s.sparse))
	}
	sum, zeros := 0.0, 0
	for _, r := range s.regs {
		sum += math.Ldexp(1, -int(r))
		if r == 0 {
			zeros++
		}
	}
	ez := float64(zeros)
	alpha := 0.7213 / (1 + 1.079/float64(m))
	e := alpha * m * (m - ez) / (sum + beta12(ez))
	return int64(math.Round(e))
}

// beta12 is LogLog-Beta's correction for precision 12: the paper's
// coefficients β0..β7 for p = 12.
func beta12(ez float64) float64 {
	zl := math.Log(ez + 1)
	return -0.384979202588598*ez + zl*(0.183162233114364+zl*(0.130396688841854+zl*(0.0704838927629266+
		zl*(-0.0089589397146453+zl*(0.0113010036741605+zl*(-0.00194285569591290+zl*0.000225435774024964))))))
}

// MarshalBinary encodes the sketch: a mode byte, then the hashes or the
// registers.
func (s *Sketch) MarshalBinary() ([]byte, error) {
	if s.regs != nil {
		return append([]byte{1, Precision}, s.regs...), nil
	}
	out := make([]byte, 2, 2+8*len(s.sparse))
	out[0], out[1] = 0, Precision
	for _, h := range s.sparse {
		out = binary.LittleEndian.AppendUint64(out, h)
	}
	return out, nil
}

// UnmarshalBinary decodes what MarshalBinary wrote.
func (s *Sketch) UnmarshalBinary(b []byte) error {
	if len(b) < 2 || b[1] != Precision {
		return errors.New("approx_count_distinct sketch: bad header")
	}
	switch {
	case b[0] == 1 && len(b) == 2+m:
		s.regs, s.sparse = slices.Clone(b[2:]), nil
	case b[0] == 0 && (len(b)-2)%8 == 0:
		s.regs, s.sparse = nil, make([]uint64, 0, (len(b)-2)/8)
		for p := 2; p < len(b); p += 8 {
			s.sparse = append(s.sparse, binary.LittleEndian.Uint64(b[p:]))
		}
	default:
		return errors.New("approx_count_distinct sketch: bad length")
	}
	return nil
}

// mix64 is SplitMix64's finalizer: a stable, well-spread hash of a 64-bit
// value (stable across processes, as stored sketches require).
func mix64(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	return x ^ x>>31
}

// HashValue returns the sketch hash of row i of a (not null): the same
// value hashes the same in every process.
func HashValue(a arrow.Array, i int) uint64 {
	switch a := a.(type) {
	case *array.Int64:
		return mix64(uint64(a.Value(i)))
	case *array.Float64:
		f := a.Value(i)
		switch {
		case f == 0:
			f = 0 // -0 and +0 are one value
		case math.IsNaN(f):
			f = math.NaN()
		}
		return mix64(math.Float64bits(f) ^ 0x5555)
	case *array.Timestamp:
		return mix64(uint64(a.Value(i)))
	case *array.Date32:
		return mix64(uint64(a.Value(i)))
	case *array.Boolean:
		if a.Value(i) {
			return mix64(1)
		}
		return mix64(0)
	case *array.String:
		return xxh3.HashString(a.Value(i))
	}
	return xxh3.HashString(a.ValueStr(i))
}

// sketches builds one sketch per group from the non-null values.
func sketches(values arrow.Array, groups []int32, ngroups int) []Sketch {
	sk := make([]Sketch, ngroups)
	for i, g := range groups {
		if g >= 0 && values.IsValid(i) {
			sk[g].Add(HashValue(values, i))
		}
	}
	return sk
}
