#include "textflag.h"

// func prefetchRecord(p unsafe.Pointer)
// Hints the eight cache lines of a 512-byte record into L1 for writing.
TEXT ·prefetchRecord(SB), NOSPLIT|NOFRAME, $0-8
	MOVD p+0(FP), R0
	PRFM (R0), PSTL1KEEP
	ADD $64, R0
	PRFM (R0), PSTL1KEEP
	ADD $64, R0
	PRFM (R0), PSTL1KEEP
	ADD $64, R0
	PRFM (R0), PSTL1KEEP
	ADD $64, R0
	PRFM (R0), PSTL1KEEP
	ADD $64, R0
	PRFM (R0), PSTL1KEEP
	ADD $64, R0
	PRFM (R0), PSTL1KEEP
	ADD $64, R0
	PRFM (R0), PSTL1KEEP
	RET

// func prefetchLine(p unsafe.Pointer)
TEXT ·prefetchLine(SB), NOSPLIT|NOFRAME, $0-8
	MOVD p+0(FP), R0
	PRFM (R0), PLDL1KEEP
	RET

// func prefetchLineW(p unsafe.Pointer)
TEXT ·prefetchLineW(SB), NOSPLIT|NOFRAME, $0-8
	MOVD p+0(FP), R0
	PRFM (R0), PSTL1KEEP
	RET
