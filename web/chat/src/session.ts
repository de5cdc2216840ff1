// The app's one client. Each browser tab is a device of its own (its id and the
// session's refresh token live in sessionStorage, which a reload keeps and another
// tab does not share): two tabs never race to rotate one refresh token, nor take
// each other's device slot, and two windows can be two users. Nothing else is kept.
import { Client } from '@natter/sdk';

const REFRESH = 'natter.refresh';
const DEVICE = 'natter.device';

function deviceId(): string {
  let id = sessionStorage.getItem(DEVICE);
  if (!id) {
    id = 'web-' + Math.random().toString(36).slice(2, 12);
    sessionStorage.setItem(DEVICE, id);
  }
  return id;
}

export function newClient(): Client {
  return new Client({
    url: location.origin,
    deviceId: deviceId(),
    platform: 'web',
    onRefreshToken: (t) => (t ? sessionStorage.setItem(REFRESH, t) : sessionStorage.removeItem(REFRESH)),
  });
}

export function keptRefreshToken(): string | null {
  return sessionStorage.getItem(REFRESH);
}
