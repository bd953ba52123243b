// Benchmark kernel and tail-call test: a tail-call-threaded bytecode
// interpreter, the design fast interpreters in C use. Each opcode's handler
// ends by tail-calling the next one's through a table (`musttail`), so with
// `-mtail-call` every dispatch is a wasm `return_call_indirect` and the
// interpreter runs any number of instructions in constant stack; without
// real tail calls its tens of millions of dispatches would need as many
// frames. The program sums the Collatz sequence lengths of 1..LIMIT, then
// the first 60 Fibonacci numbers. `run` returns
// total_steps * 2^32 + (sum of Fibonacci numbers mod 2^32).

#include <stdint.h>

#ifndef LIMIT
#define LIMIT 40000
#endif

enum { PUSH, LOAD, STORE, ADD, SUB, MUL, DIVU, MODU, DUP, LT, JZ, JMP, HALT };

typedef struct Vm {
    const int64_t *code;
    int64_t vars[8];
} Vm;

typedef int64_t (*Handler)(Vm *vm, const int64_t *pc, int64_t *sp);
static const Handler handlers[];

#define NEXT(pc, sp) __attribute__((musttail)) return handlers[*(pc)](vm, pc, sp)

static int64_t op_push(Vm *vm, const int64_t *pc, int64_t *sp) {
    *sp++ = pc[1];
    pc += 2;
    NEXT(pc, sp);
}
static int64_t op_load(Vm *vm, const int64_t *pc, int64_t *sp) {
    *sp++ = vm->vars[pc[1]];
    pc += 2;
    NEXT(pc, sp);
}
static int64_t op_store(Vm *vm, const int64_t *pc, int64_t *sp) {
    vm->vars[pc[1]] = *--sp;
    pc += 2;
    NEXT(pc, sp);
}
static int64_t op_add(Vm *vm, const int64_t *pc, int64_t *sp) {
    sp--;
    sp[-1] += sp[0];
    pc++;
    NEXT(pc, sp);
}
static int64_t op_sub(Vm *vm, const int64_t *pc, int64_t *sp) {
    sp--;
    sp[-1] -= sp[0];
    pc++;
    NEXT(pc, sp);
}
static int64_t op_mul(Vm *vm, const int64_t *pc, int64_t *sp) {
    sp--;
    sp[-1] *= sp[0];
    pc++;
    NEXT(pc, sp);
}
static int64_t op_divu(Vm *vm, const int64_t *pc, int64_t *sp) {
    sp--;
    sp[-1] = (int64_t)((uint64_t)sp[-1] / (uint64_t)sp[0]);
    pc++;
    NEXT(pc, sp);
}
static int64_t op_modu(Vm *vm, const int64_t *pc, int64_t *sp) {
    sp--;
    sp[-1] = (int64_t)((uint64_t)sp[-1] % (uint64_t)sp[0]);
    pc++;
    NEXT(pc, sp);
}
static int64_t op_dup(Vm *vm, const int64_t *pc, int64_t *sp) {
    sp[0] = sp[-1];
    sp++;
    pc++;
    NEXT(pc, sp);
}
static int64_t op_lt(Vm *vm, const int64_t *pc, int64_t *sp) {
    sp--;
    sp[-1] = sp[-1] < sp[0];
    pc++;
    NEXT(pc, sp);
}
static int64_t op_jz(Vm *vm, const int64_t *pc, int64_t *sp) {
    pc = *--sp == 0 ? vm->code + pc[1] : pc + 2;
    NEXT(pc, sp);
}
static int64_t op_jmp(Vm *vm, const int64_t *pc, int64_t *sp) {
    pc = vm->code + pc[1];
    NEXT(pc, sp);
}
static int64_t op_halt(Vm *vm, const int64_t *pc, int64_t *sp) {
    (void)pc;
    (void)sp;
    return vm->vars[3] * 4294967296LL + (vm->vars[5] & 0xffffffffLL);
}

static const Handler handlers[] = {
    op_push, op_load, op_store, op_add, op_sub, op_mul, op_divu,
    op_modu, op_dup, op_lt, op_jz, op_jmp, op_halt,
};

// The program, emitted with its jump targets resolved as it is laid out.
// vars: 0 n, 1 x, 2 i, 3 total steps, 4 a, 5 Fibonacci sum, 6 b.
typedef struct Emitter {
    int64_t code[256];
    int len;
} Emitter;

static int emit(Emitter *e, int64_t word) {
    e->code[e->len] = word;
    return e->len++;
}

static void emit2(Emitter *e, int64_t op, int64_t operand) {
    emit(e, op);
    emit(e, operand);
}

// Emits `op` with a jump target to patch; returns where the target goes.
static int emit_jump(Emitter *e, int64_t op) {
    emit(e, op);
    return emit(e, 0);
}

// vars[var] += delta
static void emit_increment(Emitter *e, int64_t var, int64_t delta) {
    emit2(e, LOAD, var);
    emit2(e, PUSH, delta);
    emit(e, ADD);
    emit2(e, STORE, var);
}

static void emit_program(Emitter *e) {
    emit2(e, PUSH, 1), emit2(e, STORE, 0);            // n = 1
    emit2(e, PUSH, 0), emit2(e, STORE, 3);            // total = 0
    int outer = e->len;                               // while n < LIMIT
    emit2(e, LOAD, 0), emit2(e, PUSH, LIMIT), emit(e, LT);
    int outer_exit = emit_jump(e, JZ);
    emit2(e, LOAD, 0), emit2(e, STORE, 1);            //   x = n
    int inner = e->len;                               //   while x != 1
    emit2(e, LOAD, 1), emit2(e, PUSH, 1), emit(e, SUB);
    int inner_exit = emit_jump(e, JZ);
    emit2(e, LOAD, 1), emit2(e, PUSH, 2), emit(e, MODU);
    int even = emit_jump(e, JZ);                      //     if x is odd
    emit2(e, LOAD, 1), emit2(e, PUSH, 3), emit(e, MUL); //     x = 3x + 1
    emit2(e, PUSH, 1), emit(e, ADD), emit2(e, STORE, 1);
    int counted = emit_jump(e, JMP);
    e->code[even] = e->len;                           //     else x = x / 2
    emit2(e, LOAD, 1), emit2(e, PUSH, 2), emit(e, DIVU), emit2(e, STORE, 1);
    e->code[counted] = e->len;
    emit_increment(e, 3, 1);                          //     total += 1
    emit2(e, JMP, inner);
    e->code[inner_exit] = e->len;
    emit_increment(e, 0, 1);                          //   n += 1
    emit2(e, JMP, outer);
    e->code[outer_exit] = e->len;
    emit2(e, PUSH, 0), emit2(e, STORE, 4);            // a = 0
    emit2(e, PUSH, 1), emit2(e, STORE, 6);            // b = 1
    emit2(e, PUSH, 0), emit2(e, STORE, 2);            // i = 0
    emit2(e, PUSH, 0), emit2(e, STORE, 5);            // sum = 0
    int fib = e->len;                                 // while i < 60
    emit2(e, LOAD, 2), emit2(e, PUSH, 60), emit(e, LT);
    int fib_exit = emit_jump(e, JZ);
    emit2(e, LOAD, 5), emit2(e, LOAD, 4), emit(e, ADD), emit2(e, STORE, 5); // sum += a
    emit2(e, LOAD, 6), emit(e, DUP), emit2(e, LOAD, 4), emit(e, ADD);       // (a, b) =
    emit2(e, STORE, 6), emit2(e, STORE, 4);                                 //   (b, a + b)
    emit_increment(e, 2, 1);                          //   i += 1
    emit2(e, JMP, fib);
    e->code[fib_exit] = e->len;
    emit(e, HALT);
}

__attribute__((export_name("run"))) int64_t run(void) {
    static Emitter e;
    e.len = 0;
    emit_program(&e);
    Vm vm = {.code = e.code};
    int64_t stack[16];
    return handlers[e.code[0]](&vm, e.code, stack);
}
