#include "textflag.h"

// func prefetchRecord(p unsafe.Pointer)
TEXT ·prefetchRecord(SB), NOSPLIT|NOFRAME, $0-8
	MOVD p+0(FP), R0
	PRFM (R0), PLDL1KEEP
	ADD $64, R0
	PRFM (R0), PLDL1KEEP
	ADD $64, R0
	PRFM (R0), PLDL1KEEP
	ADD $64, R0
	PRFM (R0), PLDL1KEEP
	ADD $64, R0
	PRFM (R0), PLDL1KEEP
	ADD $64, R0
	PRFM (R0), PLDL1KEEP
	ADD $64, R0
	PRFM (R0), PLDL1KEEP
	ADD $64, R0
	PRFM (R0), PLDL1KEEP
	RET

// func prefetchLine(p unsafe.Pointer)
TEXT ·prefetchLine(SB), NOSPLIT|NOFRAME, $0-8
	MOVD p+0(FP), R0
	PRFM (R0), PLDL1KEEP
	RET
