/* SPDX-License-Identifier: GPL-2.0 */
/* Macros cppcheck cannot see through without the system headers (which
 * `make lint` leaves out for speed): given their shape here. */
#define LIBBPF_OPTS(TYPE, NAME, ...) struct TYPE NAME = { __VA_ARGS__ }
