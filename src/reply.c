/*
 * Reply objects, built by hiredis's parser through our functions:
 *
 *  - bounded: an array header announcing more elements than any reply of
 *    ours has is refused before anything is allocated (hiredis's own
 *    functions would calloc 8 GB for "*1000000000"), and a connection fails
 *    once more than 1 MiB is buffered towards one reply;
 *  - without allocation in the common case: each connection keeps a few
 *    reply slots with room for a short string (+OK, a token), handed out
 *    from the start of every exchange, so an acquire or a release allocates
 *    nothing for its replies.  Longer strings, arrays' element vectors and
 *    replies beyond the slots are malloc'd.
 *
 * The objects are redisReply at the start of a redlock__reply_slot; free
 * them with redlock__reply_free, never with hiredis's freeReplyObject.
 */
#include "internal.h"

#include <stdlib.h>
#include <string.h>

/* No reply of ours has more elements (inspect: 2; pub/sub: 3; a SCAN
 * step of redlock_list: about its COUNT, 100). */
#define MAX_ELEMENTS 1024
/* Nor comes near this size: statuses are short, tokens at most
 * REDLOCK_TOKEN_MAX bytes. */
#define MAX_BUFFERED ((size_t)1 << 20)

static redlock__reply_slot *slot_of(void *reply)
{
    return (redlock__reply_slot *)reply; /* r is the first member */
}

void redlock__reply_free(void *reply)
{
    if (!reply)
        return;
    redlock__reply_slot *s = slot_of(reply);
    redisReply *r = &s->r;
    if (r->type == REDIS_REPLY_ARRAY && r->element) {
        for (size_t i = 0; i < r->elements; i++)
            redlock__reply_free(r->element[i]);
        free(r->element);
    }
    if (r->str && r->str != s->inline_str)
        free(r->str);
    if (!s->pooled)
        free(s);
}

static void *attach(const redisReadTask *task, redlock__reply_slot *s)
{
    if (task->parent) {
        redisReply *parent = task->parent->obj;
        if (parent->type != REDIS_REPLY_ARRAY ||
            task->idx < 0 || (size_t)task->idx >= parent->elements) {
            redlock__reply_free(s);
            return NULL;
        }
        parent->element[task->idx] = &s->r;
    }
    return &s->r;
}

static redlock__reply_slot *object(const redisReadTask *task, int type)
{
    redlock__conn *c = task->privdata;
    redlock__reply_slot *s;
    if (c && c->arena_used < REDLOCK__ARENA) {
        s = &c->arena[c->arena_used++];
        memset(&s->r, 0, sizeof s->r);
        s->pooled = 1;
    } else if ((s = malloc(sizeof *s))) {
        memset(&s->r, 0, sizeof s->r);
        s->pooled = 0;
    } else {
        return NULL;
    }
    s->r.type = type;
    return s;
}

static void *create_string(const redisReadTask *task, char *str, size_t len)
{
    redlock__reply_slot *s = object(task, task->type);
    if (!s)
        return NULL;
    if (len < sizeof s->inline_str) {
        s->r.str = s->inline_str;
    } else if (!(s->r.str = malloc(len + 1))) {
        redlock__reply_free(s);
        return NULL;
    }
    memcpy(s->r.str, str, len);
    s->r.str[len] = '\0';
    s->r.len = len;
    return attach(task, s);
}

static void *create_array(const redisReadTask *task, int elements)
{
    if (elements < 0 || elements > MAX_ELEMENTS) {
        redlock__conn *c = task->privdata;
        if (c)
            c->refused_elements = elements;
        return NULL; /* the parser reports it as out of memory */
    }
    redlock__reply_slot *s = object(task, REDIS_REPLY_ARRAY);
    if (!s)
        return NULL;
    if (elements > 0 &&
        !(s->r.element = calloc((size_t)elements, sizeof *s->r.element))) {
        redlock__reply_free(s);
        return NULL;
    }
    s->r.elements = (size_t)elements;
    return attach(task, s);
}

static void *create_integer(const redisReadTask *task, long long value)
{
    redlock__reply_slot *s = object(task, REDIS_REPLY_INTEGER);
    if (!s)
        return NULL;
    s->r.integer = value;
    return attach(task, s);
}

static void *create_nil(const redisReadTask *task)
{
    redlock__reply_slot *s = object(task, REDIS_REPLY_NIL);
    return s ? attach(task, s) : NULL;
}

static redisReplyObjectFunctions functions = {
    create_string, create_array, create_integer, create_nil,
    redlock__reply_free};

void redlock__reply_setup(redlock__conn *c)
{
    c->ctx->reader->fn = &functions;
    c->ctx->reader->privdata = c;
}

int redlock__reply_too_big(const struct redisContext *ctx)
{
    return ctx->reader->len - ctx->reader->pos > MAX_BUFFERED;
}

const char *redlock__reply_type_name(int type)
{
    switch (type) {
    case REDIS_REPLY_STRING:
        return "a bulk string";
    case REDIS_REPLY_ARRAY:
        return "an array";
    case REDIS_REPLY_INTEGER:
        return "an integer";
    case REDIS_REPLY_NIL:
        return "nil";
    case REDIS_REPLY_STATUS:
        return "a status";
    case REDIS_REPLY_ERROR:
        return "an error";
    }
    return "an unknown type";
}
