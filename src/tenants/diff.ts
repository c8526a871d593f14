/** `tenants plan`: what an apply would change, per tenant / carrier / setting. */
import type { TenantConfigSet } from './types.js';

export interface PlanChange {
  kind: 'settings' | 'carrier' | 'tenant';
  id: string;
  action: 'add' | 'change' | 'remove';
  /** Top-level fields that differ (change only). */
  fields?: string[];
  /** DID entries added/removed (tenants, add/change). */
  didsAdded?: string[];
  didsRemoved?: string[];
}

export interface Plan {
  changes: PlanChange[];
  add: number;
  change: number;
  remove: number;
}

const same = (a: unknown, b: unknown): boolean => JSON.stringify(a) === JSON.stringify(b);

function changedFields(a: object, b: object): string[] {
  const keys = new Set([...Object.keys(a), ...Object.keys(b)]);
  return [...keys].filter((k) => !same((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k])).sort();
}

export function diffConfigs(live: TenantConfigSet | undefined, next: TenantConfigSet): Plan {
  const changes: PlanChange[] = [];
  if (!live || !same(live.settings, next.settings)) {
    changes.push(
      live
        ? { kind: 'settings', id: 'settings', action: 'change', fields: changedFields(live.settings, next.settings) }
        : { kind: 'settings', id: 'settings', action: 'add' },
    );
  }
  const liveCarriers = new Map((live?.carriers ?? []).map((c) => [c.name, c]));
  const nextCarriers = new Map(next.carriers.map((c) => [c.name, c]));
  for (const [name, c] of nextCarriers) {
    const old = liveCarriers.get(name);
    if (!old) changes.push({ kind: 'carrier', id: name, action: 'add' });
    else if (!same(old, c)) changes.push({ kind: 'carrier', id: name, action: 'change', fields: changedFields(old, c) });
  }
  for (const name of liveCarriers.keys()) if (!nextCarriers.has(name)) changes.push({ kind: 'carrier', id: name, action: 'remove' });

  const liveTenants = new Map((live?.tenants ?? []).map((t) => [t.id, t]));
  const nextTenants = new Map(next.tenants.map((t) => [t.id, t]));
  for (const [id, t] of nextTenants) {
    const old = liveTenants.get(id);
    if (!old) {
      changes.push({ kind: 'tenant', id, action: 'add', didsAdded: [...t.dids] });
      continue;
    }
    const fields = changedFields(old, t);
    if (fields.length === 0) continue;
    const before = new Set(old.dids);
    const after = new Set(t.dids);
    changes.push({
      kind: 'tenant',
      id,
      action: 'change',
      fields,
      didsAdded: t.dids.filter((d) => !before.has(d)),
      didsRemoved: old.dids.filter((d) => !after.has(d)),
    });
  }
  for (const id of liveTenants.keys()) if (!nextTenants.has(id)) changes.push({ kind: 'tenant', id, action: 'remove' });

  return {
    changes,
    add: changes.filter((c) => c.action === 'add').length,
    change: changes.filter((c) => c.action === 'change').length,
    remove: changes.filter((c) => c.action === 'remove').length,
  };
}

const SIGN = { add: '+', change: '~', remove: '-' } as const;

function didSummary(list: string[] | undefined, sign: string): string {
  if (!list || list.length === 0) return '';
  const shown = list.slice(0, 5).join(' ');
  return ` ${sign}[${shown}${list.length > 5 ? ` … ${list.length - 5} more` : ''}]`;
}

export function formatPlan(plan: Plan, liveVersion: number | undefined): string {
  const lines = plan.changes.map((c) => {
    const head = `${SIGN[c.action]} ${c.kind} ${c.id}`;
    if (c.action === 'change') return `${head}: ${c.fields!.join(', ')}${didSummary(c.didsAdded, '+')}${didSummary(c.didsRemoved, '-')}`;
    if (c.action === 'add' && c.kind === 'tenant') return `${head}${didSummary(c.didsAdded, '+')}`;
    return head;
  });
  const live = liveVersion === undefined ? 'nothing live yet' : `live version ${liveVersion}`;
  if (plan.changes.length === 0) return `No changes (${live}).`;
  lines.push(`Plan: ${plan.add} to add, ${plan.change} to change, ${plan.remove} to remove (${live}).`);
  return lines.join('\n');
}
