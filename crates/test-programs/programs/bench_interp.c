// Benchmark kernel: a stack-machine bytecode interpreter (a switch in a
// loop, as in small scripting engines) running a program that sums a
// Collatz-style step function over a range. Indirect branches on
// unpredictable opcodes, a value stack in memory. `run` returns the sum.

#include <stdint.h>

enum { PUSH, LOAD, STORE, ADD, SUB, MUL, AND, SHR, LT, JZ, JMP, DUP, DROP, HALT };

// i = 0; sum = 0;
// while (i < 2000000) { sum += (i & 1) ? i * 3 + 1 : i >> 1; i += 1; }
// (The number before each line is the index of its first word.)
static const int32_t program[] = {
    /*  0 */ PUSH, 0, STORE, 0,
    /*  4 */ PUSH, 0, STORE, 1,
    /*  8 */ LOAD, 0, PUSH, 2000000, LT,
    /* 13 */ JZ, 51,
    /* 15 */ LOAD, 0, PUSH, 1, AND,
    /* 20 */ JZ, 32,
    /* 22 */ LOAD, 0, PUSH, 3, MUL, PUSH, 1, ADD,
    /* 30 */ JMP, 37,
    /* 32 */ LOAD, 0, PUSH, 1, SHR,
    /* 37 */ LOAD, 1, ADD, STORE, 1,
    /* 42 */ LOAD, 0, PUSH, 1, ADD, STORE, 0,
    /* 49 */ JMP, 8,
    /* 51 */ HALT,
};

__attribute__((export_name("run"))) int64_t run(void) {
    int64_t stack[64];
    int64_t vars[4] = {0};
    int sp = 0, pc = 0;
    for (;;) {
        int32_t op = program[pc++];
        switch (op) {
        case PUSH: stack[sp++] = program[pc++]; break;
        case LOAD: stack[sp++] = vars[program[pc++]]; break;
        case STORE: vars[program[pc++]] = stack[--sp]; break;
        case ADD: sp--; stack[sp - 1] += stack[sp]; break;
        case SUB: sp--; stack[sp - 1] -= stack[sp]; break;
        case MUL: sp--; stack[sp - 1] *= stack[sp]; break;
        case AND: sp--; stack[sp - 1] &= stack[sp]; break;
        case SHR: sp--; stack[sp - 1] >>= stack[sp]; break;
        case LT: sp--; stack[sp - 1] = stack[sp - 1] < stack[sp]; break;
        case JZ: { int32_t to = program[pc++]; if (stack[--sp] == 0) pc = to; break; }
        case JMP: pc = program[pc]; break;
        case DUP: stack[sp] = stack[sp - 1]; sp++; break;
        case DROP: sp--; break;
        default: return vars[1];
        }
    }
}
