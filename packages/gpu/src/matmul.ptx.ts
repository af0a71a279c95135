/**
 * The compute probe's kernel, PTX written by hand (no nvcc needed): C = A x B for n x n float32
 * matrices in row-major order, one thread per element of C, 2D grid of 2D blocks. The driver JIT
 * compiles it for whatever GPU it runs on (sm_50 and newer).
 */
export const MATMUL_PTX = `
.version 7.0
.target sm_50
.address_size 64

.visible .entry matmul(
  .param .u64 param_a,
  .param .u64 param_b,
  .param .u64 param_c,
  .param .u32 param_n
)
{
  .reg .pred %p<4>;
  .reg .b32 %r<16>;
  .reg .f32 %f<4>;
  .reg .b64 %rd<12>;

  ld.param.u64 %rd1, [param_a];
  ld.param.u64 %rd2, [param_b];
  ld.param.u64 %rd3, [param_c];
  ld.param.u32 %r1, [param_n];
  cvta.to.global.u64 %rd1, %rd1;
  cvta.to.global.u64 %rd2, %rd2;
  cvta.to.global.u64 %rd3, %rd3;

  mov.u32 %r2, %ctaid.y;
  mov.u32 %r3, %ntid.y;
  mov.u32 %r4, %tid.y;
  mad.lo.s32 %r5, %r2, %r3, %r4;
  mov.u32 %r6, %ctaid.x;
  mov.u32 %r7, %ntid.x;
  mov.u32 %r8, %tid.x;
  mad.lo.s32 %r9, %r6, %r7, %r8;

  setp.ge.s32 %p1, %r5, %r1;
  setp.ge.s32 %p2, %r9, %r1;
  or.pred %p3, %p1, %p2;
  @%p3 bra DONE;

  mov.f32 %f1, 0f00000000;
  mov.u32 %r10, 0;
LOOP:
  mad.lo.s32 %r11, %r5, %r1, %r10;
  mul.wide.s32 %rd4, %r11, 4;
  add.s64 %rd5, %rd1, %rd4;
  ld.global.f32 %f2, [%rd5];
  mad.lo.s32 %r12, %r10, %r1, %r9;
  mul.wide.s32 %rd6, %r12, 4;
  add.s64 %rd7, %rd2, %rd6;
  ld.global.f32 %f3, [%rd7];
  fma.rn.f32 %f1, %f2, %f3, %f1;
  add.s32 %r10, %r10, 1;
  setp.lt.s32 %p1, %r10, %r1;
  @%p1 bra LOOP;

  mad.lo.s32 %r13, %r5, %r1, %r9;
  mul.wide.s32 %rd8, %r13, 4;
  add.s64 %rd9, %rd3, %rd8;
  st.global.f32 [%rd9], %f1;
DONE:
  ret;
}
`;
