/*
 * Reply objects, built by hiredis's parser through our functions so that a
 * hostile or broken server cannot make us allocate without bound: an array
 * header announcing a billion elements is refused before the allocation
 * (hiredis's own functions would calloc 8 GB for "*1000000000"), and the
 * bytes buffered towards one reply are capped (redlock__reply_too_big).
 * The objects are plain redisReply, freed with freeReplyObject.
 */
#include "internal.h"

#include <hiredis/hiredis.h>

#include <stdlib.h>
#include <string.h>

/* No reply of ours has more elements (inspect: 2; pub/sub: 3). */
#define MAX_ELEMENTS 64
/* Nor comes near this size: tokens and statuses are short. */
#define MAX_BUFFERED ((size_t)16 << 20)

static void *attach(const redisReadTask *task, redisReply *r)
{
    if (task->parent) {
        redisReply *parent = task->parent->obj;
        if (parent->type != REDIS_REPLY_ARRAY ||
            (size_t)task->idx >= parent->elements) {
            freeReplyObject(r);
            return NULL;
        }
        parent->element[task->idx] = r;
    }
    return r;
}

static redisReply *object(int type)
{
    redisReply *r = calloc(1, sizeof *r);
    if (r)
        r->type = type;
    return r;
}

static void *create_string(const redisReadTask *task, char *str, size_t len)
{
    redisReply *r = object(task->type);
    if (!r)
        return NULL;
    if (!(r->str = malloc(len + 1))) {
        free(r);
        return NULL;
    }
    memcpy(r->str, str, len);
    r->str[len] = '\0';
    r->len = len;
    return attach(task, r);
}

static void *create_array(const redisReadTask *task, int elements)
{
    if (elements < 0 || elements > MAX_ELEMENTS)
        return NULL; /* the parser reports it as an error */
    redisReply *r = object(REDIS_REPLY_ARRAY);
    if (!r)
        return NULL;
    if (elements > 0 && !(r->element = calloc((size_t)elements, sizeof *r->element))) {
        free(r);
        return NULL;
    }
    r->elements = (size_t)elements;
    return attach(task, r);
}

static void *create_integer(const redisReadTask *task, long long value)
{
    redisReply *r = object(REDIS_REPLY_INTEGER);
    if (!r)
        return NULL;
    r->integer = value;
    return attach(task, r);
}

static void *create_nil(const redisReadTask *task)
{
    redisReply *r = object(REDIS_REPLY_NIL);
    return r ? attach(task, r) : NULL;
}

static redisReplyObjectFunctions functions = {
    create_string, create_array, create_integer, create_nil, freeReplyObject};

void redlock__reply_limits(struct redisContext *ctx)
{
    ctx->reader->fn = &functions;
}

int redlock__reply_too_big(const struct redisContext *ctx)
{
    return ctx->reader->len - ctx->reader->pos > MAX_BUFFERED;
}
