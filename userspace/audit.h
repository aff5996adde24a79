/* SPDX-License-Identifier: GPL-2.0 */
/* The OpenSSL commands: `audit`, and `policy keygen|sign|verify`. */
#ifndef IMAPGUARD_AUDIT_H
#define IMAPGUARD_AUDIT_H

/* imapguard audit HOST[:PORT]|CIDR ... : exit 0 only if every host is ok. */
int cmd_audit(int argc, char **argv);
/* imapguard policy keygen|sign|verify ...: argv[0] is the subcommand. */
int cmd_policy_sig(int argc, char **argv);

#endif
