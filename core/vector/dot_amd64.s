#include "textflag.h"

// Both float kernels must sum each vector in the same order (see dot_amd64.go):
// Y-accumulators acc0..acc2 take 24-float blocks round robin, then up to two
// 8-float blocks go to acc0 and acc1; FOLD4 adds them to 4 lanes, one
// 4-float block is added there, FOLD1 adds the lanes, and single floats
// follow. Every product is fused into its sum (FMA).

// FOLD4 sets the low 4 lanes of x0 to (acc0+acc1+acc2) lo + hi, clobbering tmp.
#define FOLD4(acc0, acc1, acc2, x0, tmp) \
	VADDPS       acc1, acc0, acc0 \
	VADDPS       acc2, acc0, acc0 \
	VEXTRACTF128 $1, acc0, tmp    \
	VADDPS       tmp, x0, x0

// FOLD1 sets lane 0 of x to (x0+x2) + (x1+x3), clobbering tmp.
#define FOLD1(x, tmp) \
	VMOVHLPS  x, x, tmp \
	VADDPS    tmp, x, x \
	VMOVSHDUP x, tmp    \
	VADDSS    tmp, x, x

// func dotAVX2(a, b []float32) float32
TEXT ·dotAVX2(SB), NOSPLIT, $0-52
	MOVQ    a_base+0(FP), AX
	MOVQ    b_base+24(FP), BX
	MOVQ    a_len+8(FP), CX
	MOVQ    b_len+32(FP), DX
	CMPQ    DX, CX
	CMOVQLT DX, CX // CX = common length
	VXORPS  Y0, Y0, Y0
	VXORPS  Y1, Y1, Y1
	VXORPS  Y2, Y2, Y2
	CMPQ    CX, $24
	JLT     d1block8

d1loop24:
	VMOVUPS     (AX), Y12
	VMOVUPS     32(AX), Y13
	VMOVUPS     64(AX), Y14
	VFMADD231PS (BX), Y12, Y0
	VFMADD231PS 32(BX), Y13, Y1
	VFMADD231PS 64(BX), Y14, Y2
	ADDQ        $96, AX
	ADDQ        $96, BX
	SUBQ        $24, CX
	CMPQ        CX, $24
	JGE         d1loop24

d1block8:
	CMPQ        CX, $8
	JLT         d1fold4
	VMOVUPS     (AX), Y12
	VFMADD231PS (BX), Y12, Y0
	ADDQ        $32, AX
	ADDQ        $32, BX
	SUBQ        $8, CX
	CMPQ        CX, $8
	JLT         d1fold4
	VMOVUPS     (AX), Y12
	VFMADD231PS (BX), Y12, Y1
	ADDQ        $32, AX
	ADDQ        $32, BX
	SUBQ        $8, CX

d1fold4:
	FOLD4(Y0, Y1, Y2, X0, X12)
	CMPQ        CX, $4
	JLT         d1fold1
	VMOVUPS     (AX), X12
	VFMADD231PS (BX), X12, X0
	ADDQ        $16, AX
	ADDQ        $16, BX
	SUBQ        $4, CX

d1fold1:
	FOLD1(X0, X12)
	TESTQ CX, CX
	JEQ   d1done

d1loop1:
	VMOVSS      (AX), X12
	VFMADD231SS (BX), X12, X0
	ADDQ        $4, AX
	ADDQ        $4, BX
	DECQ        CX
	JNE         d1loop1

d1done:
	VMOVSS     X0, ret+48(FP)
	VZEROUPPER
	RET

// func dot4AVX2(q, a, b, c, d []float32) (sa, sb, sc, sd float32)
TEXT ·dot4AVX2(SB), NOSPLIT, $0-136
	MOVQ   q_base+0(FP), AX
	MOVQ   q_len+8(FP), CX
	MOVQ   a_base+24(FP), R8
	MOVQ   b_base+48(FP), R9
	MOVQ   c_base+72(FP), R10
	MOVQ   d_base+96(FP), R11
	XORQ   SI, SI // byte offset into every vector
	VXORPS Y0, Y0, Y0
	VXORPS Y1, Y1, Y1
	VXORPS Y2, Y2, Y2
	VXORPS Y3, Y3, Y3
	VXORPS Y4, Y4, Y4
	VXORPS Y5, Y5, Y5
	VXORPS Y6, Y6, Y6
	VXORPS Y7, Y7, Y7
	VXORPS Y8, Y8, Y8
	VXORPS Y9, Y9, Y9
	VXORPS Y10, Y10, Y10
	VXORPS Y11, Y11, Y11
	CMPQ   CX, $24
	JLT    d4block8

d4loop24:
	VMOVUPS     (AX)(SI*1), Y12
	VMOVUPS     32(AX)(SI*1), Y13
	VMOVUPS     64(AX)(SI*1), Y14
	VFMADD231PS (R8)(SI*1), Y12, Y0
	VFMADD231PS 32(R8)(SI*1), Y13, Y1
	VFMADD231PS 64(R8)(SI*1), Y14, Y2
	VFMADD231PS (R9)(SI*1), Y12, Y3
	VFMADD231PS 32(R9)(SI*1), Y13, Y4
	VFMADD231PS 64(R9)(SI*1), Y14, Y5
	VFMADD231PS (R10)(SI*1), Y12, Y6
	VFMADD231PS 32(R10)(SI*1), Y13, Y7
	VFMADD231PS 64(R10)(SI*1), Y14, Y8
	VFMADD231PS (R11)(SI*1), Y12, Y9
	VFMADD231PS 32(R11)(SI*1), Y13, Y10
	VFMADD231PS 64(R11)(SI*1), Y14, Y11
	ADDQ        $96, SI
	SUBQ        $24, CX
	CMPQ        CX, $24
	JGE         d4loop24

d4block8:
	CMPQ        CX, $8
	JLT         d4fold4
	VMOVUPS     (AX)(SI*1), Y12
	VFMADD231PS (R8)(SI*1), Y12, Y0
	VFMADD231PS (R9)(SI*1), Y12, Y3
	VFMADD231PS (R10)(SI*1), Y12, Y6
	VFMADD231PS (R11)(SI*1), Y12, Y9
	ADDQ        $32, SI
	SUBQ        $8, CX
	CMPQ        CX, $8
	JLT         d4fold4
	VMOVUPS     (AX)(SI*1), Y12
	VFMADD231PS (R8)(SI*1), Y12, Y1
	VFMADD231PS (R9)(SI*1), Y12, Y4
	VFMADD231PS (R10)(SI*1), Y12, Y7
	VFMADD231PS (R11)(SI*1), Y12, Y10
	ADDQ        $32, SI
	SUBQ        $8, CX

d4fold4:
	FOLD4(Y0, Y1, Y2, X0, X12)
	FOLD4(Y3, Y4, Y5, X3, X13)
	FOLD4(Y6, Y7, Y8, X6, X14)
	FOLD4(Y9, Y10, Y11, X9, X15)
	CMPQ        CX, $4
	JLT         d4fold1
	VMOVUPS     (AX)(SI*1), X12
	VFMADD231PS (R8)(SI*1), X12, X0
	VFMADD231PS (R9)(SI*1), X12, X3
	VFMADD231PS (R10)(SI*1), X12, X6
	VFMADD231PS (R11)(SI*1), X12, X9
	ADDQ        $16, SI
	SUBQ        $4, CX

d4fold1:
	FOLD1(X0, X12)
	FOLD1(X3, X13)
	FOLD1(X6, X14)
	FOLD1(X9, X15)
	TESTQ CX, CX
	JEQ   d4done

d4loop1:
	VMOVSS      (AX)(SI*1), X12
	VFMADD231SS (R8)(SI*1), X12, X0
	VFMADD231SS (R9)(SI*1), X12, X3
	VFMADD231SS (R10)(SI*1), X12, X6
	VFMADD231SS (R11)(SI*1), X12, X9
	ADDQ        $4, SI
	DECQ        CX
	JNE         d4loop1

d4done:
	VMOVSS     X0, sa+120(FP)
	VMOVSS     X3, sb+124(FP)
	VMOVSS     X6, sc+128(FP)
	VMOVSS     X9, sd+132(FP)
	VZEROUPPER
	RET

// func dotInt8AVX2(a, b []int8) int32
// Integer sums are exact (modulo 2^32), so order does not matter here.
TEXT ·dotInt8AVX2(SB), NOSPLIT, $0-52
	MOVQ    a_base+0(FP), AX
	MOVQ    b_base+24(FP), BX
	MOVQ    a_len+8(FP), CX
	MOVQ    b_len+32(FP), DX
	CMPQ    DX, CX
	CMOVQLT DX, CX // CX = common length
	VPXOR   Y0, Y0, Y0
	VPXOR   Y1, Y1, Y1
	CMPQ    CX, $32
	JLT     i8block16

i8loop32:
	VPMOVSXBW (AX), Y2 // 16 int8 → 16 int16
	VPMOVSXBW (BX), Y3
	VPMADDWD  Y3, Y2, Y2 // adjacent products summed → 8 int32
	VPADDD    Y2, Y0, Y0
	VPMOVSXBW 16(AX), Y4
	VPMOVSXBW 16(BX), Y5
	VPMADDWD  Y5, Y4, Y4
	VPADDD    Y4, Y1, Y1
	ADDQ      $32, AX
	ADDQ      $32, BX
	SUBQ      $32, CX
	CMPQ      CX, $32
	JGE       i8loop32

i8block16:
	CMPQ      CX, $16
	JLT       i8fold4
	VPMOVSXBW (AX), Y2
	VPMOVSXBW (BX), Y3
	VPMADDWD  Y3, Y2, Y2
	VPADDD    Y2, Y0, Y0
	ADDQ      $16, AX
	ADDQ      $16, BX
	SUBQ      $16, CX

i8fold4:
	VPADDD       Y1, Y0, Y0
	VEXTRACTI128 $1, Y0, X1
	VPADDD       X1, X0, X0
	CMPQ         CX, $8
	JLT          i8fold1
	VPMOVSXBW    (AX), X2 // 8 int8 → 8 int16
	VPMOVSXBW    (BX), X3
	VPMADDWD     X3, X2, X2
	VPADDD       X2, X0, X0
	ADDQ         $8, AX
	ADDQ         $8, BX
	SUBQ         $8, CX

i8fold1:
	VPSHUFD $0x4e, X0, X1 // swap 64-bit halves
	VPADDD  X1, X0, X0
	VPSHUFD $0xb1, X0, X1 // swap neighbouring lanes
	VPADDD  X1, X0, X0
	VMOVD   X0, R8
	TESTQ   CX, CX
	JEQ     i8done

i8loop1:
	MOVBLSX (AX), R9
	MOVBLSX (BX), R10
	IMULL   R10, R9
	ADDL    R9, R8
	INCQ    AX
	INCQ    BX
	DECQ    CX
	JNE     i8loop1

i8done:
	MOVL       R8, ret+48(FP)
	VZEROUPPER
	RET
