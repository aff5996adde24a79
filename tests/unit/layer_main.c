// SPDX-License-Identifier: GPL-2.0
/* The main() a layer is linked with to prove it needs nothing from above. */
int main(void)
{
	return 0;
}
