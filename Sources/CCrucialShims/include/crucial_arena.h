#ifndef CRUCIAL_ARENA_H
#define CRUCIAL_ARENA_H

#include <stddef.h>

/// A bump allocator per thread for the C structs of the messages being encoded or decoded
/// on it (CrucialCore's `CArena`). Uses nest: memory is given back when the outermost use
/// ends, and the thread keeps its first chunk for the next message, so a typical frame costs
/// no malloc at all. Only synchronous code may use it (a Swift task does not change threads
/// inside a synchronous function).

/// Begins a use of this thread's arena.
void crucial_arena_begin(void);
/// Ends a use; the outermost end releases everything allocated since its begin.
void crucial_arena_end(void);
/// `size` bytes aligned to 16, valid until the outermost `crucial_arena_end`; NULL only
/// when the system is out of memory.
void *_Nullable crucial_arena_alloc(size_t size);

#endif
