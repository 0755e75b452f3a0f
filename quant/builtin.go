package quant

import _ "embed"

// BuiltinCalibration is the calibration text mole quantize uses without --calib: the
// King James Bible's Genesis 1, the start of Genesis 2, Psalm 23 and a narrative verse
// (public domain, all from the part of the KJV that kjv-moe was trained on; none of it
// is in kjv-moe's heldout.txt), then three short paragraphs of plain modern English
// written for mole (a children's story and two descriptive ones) so that models of
// other domains see ordinary prose too. About 1,400 words.
//
//go:embed calib_builtin.txt
var BuiltinCalibration string
