/* A binary min-heap of locks ordered by their next renewal time.  Each lock
 * knows its index, so that removal is O(log n). */
#include "internal.h"

#include <stdlib.h>

static int earlier(const redlock_lock *a, const redlock_lock *b)
{
    return a->wd_due_ms < b->wd_due_ms;
}

static void put(redlock__heap *h, int i, redlock_lock *l)
{
    h->items[i] = l;
    l->wd_index = i;
}

static void sift_up(redlock__heap *h, int i)
{
    redlock_lock *l = h->items[i];
    while (i > 0) {
        int parent = (i - 1) / 2;
        if (!earlier(l, h->items[parent]))
            break;
        put(h, i, h->items[parent]);
        i = parent;
    }
    put(h, i, l);
}

static void sift_down(redlock__heap *h, int i)
{
    redlock_lock *l = h->items[i];
    for (;;) {
        int child = 2 * i + 1;
        if (child >= h->n)
            break;
        if (child + 1 < h->n && earlier(h->items[child + 1], h->items[child]))
            child++;
        if (!earlier(h->items[child], l))
            break;
        put(h, i, h->items[child]);
        i = child;
    }
    put(h, i, l);
}

int redlock__heap_push(redlock__heap *h, redlock_lock *l)
{
    if (h->n == h->cap) {
        int cap = h->cap ? h->cap * 2 : 64;
        redlock_lock **items = realloc(h->items, (size_t)cap * sizeof *items);
        if (!items)
            return -1;
        h->items = items;
        h->cap = cap;
    }
    put(h, h->n++, l);
    sift_up(h, h->n - 1);
    return 0;
}

redlock_lock *redlock__heap_top(const redlock__heap *h)
{
    return h->n > 0 ? h->items[0] : NULL;
}

void redlock__heap_remove(redlock__heap *h, redlock_lock *l)
{
    int i = l->wd_index;
    if (i < 0 || i >= h->n || h->items[i] != l)
        return;
    l->wd_index = -1;
    redlock_lock *last = h->items[--h->n];
    if (i == h->n)
        return;
    put(h, i, last);
    sift_down(h, i);
    sift_up(h, last->wd_index);
}

void redlock__heap_free(redlock__heap *h)
{
    free(h->items);
    h->items = NULL;
    h->n = h->cap = 0;
}
