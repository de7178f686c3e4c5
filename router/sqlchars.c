/*
 * sqlchars.c — the table behind sqlchars.h.
 */
#include "router/sqlchars.h"

#define SP SQLCH_SPACE
#define DG (SQLCH_DIGIT | SQLCH_IDENT | SQLCH_ALNUM)
#define LT (SQLCH_START | SQLCH_IDENT | SQLCH_ALNUM)
#define OP SQLCH_OP
#define OS (SQLCH_OP | SQLCH_SPECIAL)
const uint8_t sql_char_class[256] = {
    [' '] = SP,
    ['\t'] = SP,
    ['\n'] = SP,
    ['\v'] = SP,
    ['\f'] = SP,
    ['\r'] = SP,
    ['0' ... '9'] = DG,
    ['a' ... 'z'] = LT,
    ['A' ... 'Z'] = LT,
    ['_'] = SQLCH_START | SQLCH_IDENT,
    ['$'] = SQLCH_IDENT | SQLCH_STMT,
    [';'] = SQLCH_STMT,
    ['\''] = SQLCH_STMT,
    ['"'] = SQLCH_STMT,
    [0x80 ... 0xFF] = SQLCH_START | SQLCH_IDENT,
    ['+'] = OP,
    ['-'] = OP | SQLCH_STMT,
    ['*'] = OP,
    ['/'] = OP | SQLCH_STMT,
    ['<'] = OP,
    ['>'] = OP,
    ['='] = OP,
    ['~'] = OS,
    ['!'] = OS,
    ['@'] = OS,
    ['#'] = OS,
    ['%'] = OS,
    ['^'] = OS,
    ['&'] = OS,
    ['|'] = OS,
    ['`'] = OS,
    ['?'] = OS,
};
#undef SP
#undef DG
#undef LT
#undef OP
#undef OS
