/** What the fault suite needs: network namespaces, and nftables (by its full name). */
import { netnsUnavailableReason } from '../helpers/netns.mjs';
import { commandMissing } from '../helpers/requirements.js';

/**
 * The nftables command. Under npm, `nft` on the PATH is node_modules/.bin/nft
 * (@vercel/nft, a dependency of the tooling), which is something else entirely; the
 * fixtures use the same full name (fixtures/lib.mjs).
 */
export const NFT = '/usr/sbin/nft';

/** Why the fault fixtures cannot run here (no namespaces, no nftables), or undefined. */
export function faultsMissing(): string | undefined {
  return netnsUnavailableReason() ?? commandMissing(NFT, ['--version']);
}
