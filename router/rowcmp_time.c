/*
 * rowcmp_time.c — the date and time sort keys: date, time, timestamp,
 * timestamptz, timetz and interval, decoded from binary or from the text
 * PostgreSQL writes (DateStyle ISO, IntervalStyle postgres) into the values
 * its btree compares: days or microseconds since 2000-01-01 (infinities
 * included), a timetz's time and zone, an interval's whole span.
 */
#include "router/rowcmp_int.h"

#include <limits.h>

#define USECS_PER_SEC        INT64_C(1000000)
#define USECS_PER_DAY        (INT64_C(86400) * USECS_PER_SEC)
#define POSTGRES_EPOCH_JDATE 2451545 /* date2j(2000, 1, 1) */

/* A cursor over a text value; every read checks the end. */
typedef struct cur {
	const uint8_t *p;
	const uint8_t *end;
} cur_t;

static cur_t cur_of(const rowcmp_field_t *f)
{
	cur_t c = {f->data, f->data + f->len};

	return c;
}

static bool cur_eof(const cur_t *c)
{
	return c->p == c->end;
}

static bool cur_char(cur_t *c, uint8_t ch)
{
	if (c->p == c->end || *c->p != ch)
		return false;
	c->p++;
	return true;
}

static bool cur_lit(cur_t *c, const char *lit)
{
	size_t n = strlen(lit);

	if ((size_t)(c->end - c->p) < n || memcmp(c->p, lit, n) != 0)
		return false;
	c->p += n;
	return true;
}

/* Between min and max decimal digits (max <= 18, so no overflow). */
static bool cur_digits(cur_t *c, int min, int max, int64_t *out)
{
	int64_t v = 0;
	int n = 0;

	while (n < max && c->p < c->end && is_digit(*c->p)) {
		v = v * 10 + (*c->p - '0');
		c->p++;
		n++;
	}
	if (n < min || (c->p < c->end && is_digit(*c->p)))
		return false;
	*out = v;
	return true;
}

/* PostgreSQL's date2j: the Julian day of a proleptic Gregorian date. */
static int64_t date2j(int64_t year, int64_t month, int64_t day)
{
	int64_t julian, century;

	if (month > 2) {
		month += 1;
		year += 4800;
	} else {
		month += 13;
		year += 4799;
	}
	century = year / 100;
	julian = year * 365 - 32167;
	julian += year / 4 - century + century / 4;
	julian += 7834 * month / 256 + day;
	return julian;
}

static bool is_leap(int64_t y)
{
	return y % 4 == 0 && (y % 100 != 0 || y % 400 == 0);
}

/*
 * "YYYY-MM-DD" with four or more year digits, as DateStyle ISO writes
 * dates. The year stays as written; BC is known only at the end of the
 * value (" BC" follows the time and the offset).
 */
static bool parse_ymd(cur_t *c, int64_t *y, int64_t *m, int64_t *d)
{
	return cur_digits(c, 4, 7, y) && cur_char(c, '-') && cur_digits(c, 2, 2, m) &&
	       cur_char(c, '-') && cur_digits(c, 2, 2, d);
}

/* Days since 2000-01-01 of a written date; 1 BC is year 0 (as PostgreSQL has it). */
static bool ymd_days(int64_t y, int64_t m, int64_t d, bool bc, int64_t *days)
{
	static const int mdays[2][12] = {{31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31},
	                                 {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31}};

	if (y < 1)
		return false; /* ISO output has no year 0 */
	if (bc)
		y = 1 - y;
	if (y < -4713 || m < 1 || m > 12 || d < 1 || d > mdays[is_leap(y)][m - 1])
		return false; /* before 4714 BC PostgreSQL has no dates */
	*days = date2j(y, m, d) - POSTGRES_EPOCH_JDATE;
	return true;
}

/* "mm:ss[.ffffff]" in microseconds: the end of a time after its hours. */
static bool parse_mmss(cur_t *c, int64_t *usec)
{
	int64_t m, s, frac = 0;

	if (!cur_digits(c, 2, 2, &m) || !cur_char(c, ':') || !cur_digits(c, 2, 2, &s) || m > 59 ||
	    s > 59)
		return false;
	if (cur_char(c, '.')) {
		int n = 0;

		while (c->p < c->end && is_digit(*c->p) && n < 6) {
			frac = frac * 10 + (*c->p++ - '0');
			n++;
		}
		if (n == 0 || (c->p < c->end && is_digit(*c->p)))
			return false;
		for (; n < 6; n++)
			frac *= 10;
	}
	*usec = (m * 60 + s) * USECS_PER_SEC + frac;
	return true;
}

/* "hh:mm:ss[.ffffff]" in microseconds; max_hour 24 for time, 23 in timestamps. */
static bool parse_hms(cur_t *c, int64_t max_hour, int64_t *usec)
{
	int64_t h, rest;

	if (!cur_digits(c, 2, 2, &h) || !cur_char(c, ':') || !parse_mmss(c, &rest))
		return false;
	if (h > max_hour || (h == 24 && rest != 0))
		return false;
	*usec = h * 3600 * USECS_PER_SEC + rest;
	return true;
}

/* A UTC offset as EncodeTimezone writes it: "+hh", "+hh:mm" or "+hh:mm:ss"; seconds east. */
static bool parse_offset(cur_t *c, int64_t *east)
{
	int64_t h, m = 0, s = 0;
	int sign;

	if (cur_char(c, '+'))
		sign = 1;
	else if (cur_char(c, '-'))
		sign = -1;
	else
		return false;
	if (!cur_digits(c, 2, 2, &h))
		return false;
	if (cur_char(c, ':')) {
		if (!cur_digits(c, 2, 2, &m))
			return false;
		if (cur_char(c, ':') && !cur_digits(c, 2, 2, &s))
			return false;
	}
	if (m > 59 || s > 59)
		return false;
	*east = sign * ((h * 60 + m) * 60 + s);
	return true;
}

bool time_parse_date(const rowcmp_field_t *f, int16_t format, int64_t *out)
{
	cur_t c = cur_of(f);
	int64_t y, m, d;
	bool bc;

	if (format != 0) {
		if (f->len != 4)
			return false;
		*out = (int32_t)be32(f->data); /* INT32_MIN/MAX are the infinities */
		return true;
	}
	if (field_is(f, "infinity")) {
		*out = INT32_MAX;
		return true;
	}
	if (field_is(f, "-infinity")) {
		*out = INT32_MIN;
		return true;
	}
	if (!parse_ymd(&c, &y, &m, &d))
		return false;
	bc = cur_lit(&c, " BC");
	return cur_eof(&c) && ymd_days(y, m, d, bc, out) && *out > INT32_MIN && *out < INT32_MAX;
}

bool time_parse_time(const rowcmp_field_t *f, int16_t format, int64_t *out)
{
	cur_t c = cur_of(f);

	if (format != 0) {
		if (f->len != 8)
			return false;
		*out = (int64_t)be64(f->data);
		return true;
	}
	return parse_hms(&c, 24, out) && cur_eof(&c);
}

/*
 * timestamp and timestamptz: microseconds since 2000-01-01 00:00 (UTC for
 * timestamptz), INT64_MIN and INT64_MAX for -infinity and infinity. The ISO
 * text is "2024-03-01 13:45:00.5", with the offset for timestamptz
 * ("+01", "+05:30", "-03:00:15") and " BC" last.
 */
bool time_parse_timestamp(const rowcmp_field_t *f, int16_t format, bool tz, int64_t *out)
{
	cur_t c = cur_of(f);
	int64_t y, m, d, days, tod, east = 0;
	__int128 v;
	bool bc;

	if (format != 0) {
		if (f->len != 8)
			return false;
		*out = (int64_t)be64(f->data);
		return true;
	}
	if (field_is(f, "infinity")) {
		*out = INT64_MAX;
		return true;
	}
	if (field_is(f, "-infinity")) {
		*out = INT64_MIN;
		return true;
	}
	if (!parse_ymd(&c, &y, &m, &d) || !cur_char(&c, ' ') || !parse_hms(&c, 23, &tod))
		return false;
	if (tz && !parse_offset(&c, &east))
		return false;
	bc = cur_lit(&c, " BC");
	if (!cur_eof(&c) || !ymd_days(y, m, d, bc, &days))
		return false;
	v = (__int128)days * USECS_PER_DAY + tod - (__int128)east * USECS_PER_SEC;
	if (v <= INT64_MIN || v >= INT64_MAX)
		return false;
	*out = (int64_t)v;
	return true;
}

bool time_parse_timetz(const rowcmp_field_t *f, int16_t format, timetz_t *out)
{
	cur_t c = cur_of(f);
	int64_t east;

	if (format != 0) {
		if (f->len != 12)
			return false;
		out->time = (int64_t)be64(f->data);
		out->zone = (int32_t)be32(f->data + 8);
		return true;
	}
	if (!parse_hms(&c, 24, &out->time) || !parse_offset(&c, &east) || !cur_eof(&c))
		return false;
	out->zone = (int32_t)-east;
	return true;
}

/* In int128: binary values come from the wire unchecked, and time + zone of
 * arbitrary ones overflows int64 (PostgreSQL's own values never do). */
int time_cmp_timetz(const timetz_t *a, const timetz_t *b)
{
	__int128 ta = (__int128)a->time + (__int128)a->zone * USECS_PER_SEC;
	__int128 tb = (__int128)b->time + (__int128)b->zone * USECS_PER_SEC;

	if (ta != tb)
		return ta < tb ? -1 : 1;
	return cmp_i64(a->zone, b->zone);
}

/*
 * interval: compared as PostgreSQL's interval_cmp_value does, by the whole
 * span in microseconds with 30-day months and 24-hour days, as int128
 * (so '1 mon' = '30 days' = '720:00:00').
 *
 * Text is IntervalStyle postgres: "1 year 2 mons -3 days -04:05:06.5",
 * "-1 days", "00:00:00". Every number before the time carries its unit, so
 * sql_standard ("1-2", "3 4:05:06") and iso_8601 ("P1Y") do not parse.
 */
static bool parse_interval_text(const rowcmp_field_t *f, __int128 *span)
{
	static const struct {
		const char *unit;
		int64_t days; /* per unit; months are 30 days */
	} units[] = {{"years", 360}, {"year", 360}, {"mons", 30},
	             {"mon", 30},    {"days", 1},   {"day", 1}};
	cur_t c = cur_of(f);
	__int128 days = 0, usec = 0;
	bool any = false;

	while (!cur_eof(&c)) {
		int64_t v, t;
		int sign = 1;
		size_t u;

		if (any && !cur_char(&c, ' '))
			return false;
		if (cur_char(&c, '-'))
			sign = -1;
		else
			(void)cur_char(&c, '+');
		if (!cur_digits(&c, 1, 10, &v))
			return false;
		if (cur_char(&c, ':')) {
			/* the time comes last: hours (as many digits as needed), mm:ss[.f] */
			if (!parse_mmss(&c, &t) || !cur_eof(&c))
				return false;
			usec += sign * ((__int128)v * 3600 * USECS_PER_SEC + t);
			any = true;
			break;
		}
		if (!cur_char(&c, ' '))
			return false;
		for (u = 0; u < sizeof(units) / sizeof(units[0]); u++) {
			if (cur_lit(&c, units[u].unit))
				break;
		}
		if (u == sizeof(units) / sizeof(units[0]) || (!cur_eof(&c) && *c.p != ' '))
			return false;
		days += (__int128)sign * v * units[u].days;
		any = true;
	}
	if (!any)
		return false;
	*span = usec + days * USECS_PER_DAY;
	return true;
}

bool time_parse_interval(const rowcmp_field_t *f, int16_t format, __int128 *span)
{
	int64_t time, days;

	if (format == 0)
		return parse_interval_text(f, span);
	if (f->len != 16)
		return false;
	time = (int64_t)be64(f->data);
	days = (int64_t)(int32_t)be32(f->data + 8) + (int64_t)(int32_t)be32(f->data + 12) * 30;
	*span = (__int128)time + (__int128)days * USECS_PER_DAY;
	return true;
}
