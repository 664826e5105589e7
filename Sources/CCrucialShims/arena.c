#include <stdlib.h>
#include <stdint.h>
#include "crucial_arena.h"

/// The chunk a thread keeps between messages: a 1 KB put's frame and its structs fit.
#define CHUNK_SIZE (16 * 1024)
#define ALIGNMENT 16

/// A block too large for what is left of the chunk, freed at the outermost end.
typedef struct oversized {
    struct oversized *next;
    /// Keeps the bytes after the header 16-aligned.
    uint64_t padding;
} oversized;

static _Thread_local struct {
    unsigned char *chunk;
    size_t used;
    oversized *blocks;
    unsigned depth;
} arena;

void crucial_arena_begin(void) { arena.depth++; }

void crucial_arena_end(void) {
    if (arena.depth == 0 || --arena.depth > 0) return;
    arena.used = 0;
    while (arena.blocks) {
        oversized *next = arena.blocks->next;
        free(arena.blocks);
        arena.blocks = next;
    }
}

void *crucial_arena_alloc(size_t size) {
    size_t rounded = (size + ALIGNMENT - 1) & ~(size_t)(ALIGNMENT - 1);
    if (rounded == 0) rounded = ALIGNMENT;
    if (!arena.chunk) arena.chunk = aligned_alloc(ALIGNMENT, CHUNK_SIZE);
    if (arena.chunk && rounded <= CHUNK_SIZE - arena.used) {
        void *p = arena.chunk + arena.used;
        arena.used += rounded;
        return p;
    }
    if (rounded > SIZE_MAX - sizeof(oversized)) return NULL;
    oversized *block = aligned_alloc(ALIGNMENT, sizeof(oversized) + rounded);
    if (!block) return NULL;
    block->next = arena.blocks;
    arena.blocks = block;
    return (unsigned char *)block + sizeof(oversized);
}
