// Request and reply types of the ops the SDK wraps, keyed by the generated OpName so
// that tsc refuses an entry for an op the server's table does not have. Ops without an
// entry here are still callable through Client.call with loose types.
import type { ConvState, Message, OpName, UserCard } from './gen.js';

export type Json = Record<string, unknown>;

export interface LoginReply {
  user_id: number;
  session_id: string;
  access_token: string;
  refresh_token: string;
  expires_in: number;
}

export interface Profile {
  user_id: number;
  username: string;
  nickname: string;
  avatar: string;
  bio: string;
  created_at: number;
}

export interface SendReply {
  conv_id: string;
  seq: number;
  id: string;
  sent_at: number;
  duplicate?: boolean;
}

export interface SyncConversation {
  conv_id: string;
  last_seq: number;
  last_mod: number;
  messages: Message[];
  changed?: Message[];
  has_more: boolean;
}

/** One row of conv.list. */
export interface Conversation {
  conv_id: string;
  type: 'direct' | 'group';
  peer_id?: number;
  group_id?: number;
  name: string;
  avatar: string;
  last_seq: number;
  last_msg_at: number;
  last_message: Message | null;
  preview?: string;
  unread: number;
  read_seq: number;
  mentioned: boolean;
  pinned: boolean;
  muted: boolean;
}

export interface GroupInfo {
  group_id: number;
  conv_id: string;
  name: string;
  avatar: string;
  intro: string;
  owner_id: number;
  join_policy: string;
  history_visible: boolean;
  mute_all: boolean;
  member_count: number;
  max_members: number;
  dismissed: boolean;
  created_at: number;
  my_role?: 'owner' | 'admin' | 'member';
}

export interface FriendRequestRow {
  request_id: number;
  from: number;
  to: number;
  message: string;
  status: 'pending' | 'accepted' | 'declined' | 'cancelled';
  created_at: number;
  updated_at: number;
  user: UserCard;
}

export interface Friend extends UserCard {
  remark: string;
  blocked: boolean;
  since: number;
}

export interface FileInfo {
  file_id: string;
  owner: number;
  purpose: string;
  name: string;
  size: number;
  mime: string;
  kind: 'image' | 'video' | 'audio' | 'file';
  width?: number;
  height?: number;
  thumb?: { width: number; height: number };
  sha256?: string;
  created_at: number;
  url?: string;
  thumb_url?: string;
  expires_at?: number;
}

export interface UploadBegin {
  file_id: string;
  method: string;
  url?: string;
  headers?: Record<string, string>;
  parts?: { number: number; size: number; url: string }[];
  expires_at: number;
}

/** A message msg.search found: where it is, and a piece of its text around the matches. */
export interface SearchHit {
  conv_id: string;
  seq: number;
  id: string;
  sender: number;
  type: string;
  sent_at: number;
  /** highlights are [start, end) offsets in text, in Unicode code points. */
  snippet: { text: string; highlights: [number, number][] };
}

/** Request and reply of the typed ops. */
export interface OpTypes {
  'account.register': { req: { username: string; password: string; nickname?: string; client_id?: string }; res: { user_id: number } };
  'account.login': { req: { username: string; password: string; device_id: string; platform?: string; app_version?: string }; res: LoginReply };
  'account.refresh': { req: { refresh_token: string }; res: LoginReply };
  'account.logout': { req: Json; res: Json };
  'account.profile.get': { req: { user_id: number }; res: Profile };
  'user.lookup': { req: { username: string }; res: UserCard };
  'friend.request': { req: { to: number; message?: string }; res: { request_id: number; status: string } };
  'friend.respond': { req: { request_id: number; accept: boolean }; res: { status: string } };
  'friend.requests': { req: { direction?: 'incoming' | 'outgoing'; status?: string; before?: number; limit?: number }; res: { requests: FriendRequestRow[]; has_more: boolean } };
  'friend.list': { req: { after?: number; limit?: number }; res: { friends: Friend[]; has_more: boolean } };
  'group.create': { req: { name: string; members?: number[]; join_policy?: string; history_visible?: boolean; intro?: string; client_id?: string }; res: GroupInfo };
  'group.get': { req: { group_id: number }; res: GroupInfo };
  'group.invite': { req: { group_id: number; user_ids: number[] }; res: { added: number[] } };
  'group.members': { req: { group_id: number; after?: number; limit?: number }; res: { members: { user_id: number; nickname: string; avatar: string; role: string; joined_at: number; muted_until?: number }[]; has_more: boolean } };
  'msg.send': { req: { to?: number; conv_id?: string; client_msg_id: string; type: string; content: unknown }; res: SendReply };
  'msg.history': { req: { conv_id: string; before?: number; after?: number; limit?: number }; res: { messages: Message[]; has_more: boolean } };
  'msg.sync': { req: { cursors: Record<string, number>; mods: Record<string, number>; limit?: number }; res: { conversations: SyncConversation[]; has_more: boolean } };
  'msg.recall': { req: { id?: string; conv_id?: string; seq?: number }; res: { conv_id: string; seq: number; mod: number } };
  'msg.edit': { req: { id?: string; conv_id?: string; seq?: number; type?: string; content: unknown }; res: Message };
  'msg.react': { req: { id?: string; conv_id?: string; seq?: number; emoji: string; remove?: boolean }; res: { conv_id: string; seq: number; emoji: string; user_id: number; added: boolean; count: number; mod: number } };
  'msg.receipts': { req: { id?: string; conv_id?: string; seq?: number; after?: number; limit?: number }; res: { conv_id: string; seq: number; read: number; members: number; readers?: number[]; has_more?: boolean } };
  'msg.typing': { req: { conv_id: string }; res: { sent: boolean } };
  'msg.search': {
    req: { query: string; conv_id?: string; sender?: number; type?: string; since?: number; until?: number; order?: 'newest' | 'relevance'; before?: string; offset?: number; limit?: number };
    res: { hits: SearchHit[]; has_more: boolean; next_before?: string; next_offset?: number };
  };
  'conv.list': { req: { offset?: number; limit?: number }; res: { conversations: Conversation[]; has_more: boolean } };
  'conv.read': { req: { conv_id: string; seq: number }; res: ConvState };
  'conv.pin': { req: { conv_id: string; pinned: boolean }; res: ConvState };
  'conv.mute': { req: { conv_id: string; muted: boolean }; res: ConvState };
  'file.upload.begin': { req: { name: string; size: number; mime: string; purpose?: string; duration_ms?: number; sha256?: string }; res: UploadBegin };
  'file.upload.complete': { req: { file_id: string }; res: FileInfo };
  'file.get': { req: { file_id: string }; res: FileInfo };
}

// Every key of OpTypes must be an op of the server's table.
type _Check = Exclude<keyof OpTypes, OpName> extends never ? true : never;
export const opTypesChecked: _Check = true;

export type Req<K extends OpName> = K extends keyof OpTypes ? OpTypes[K]['req'] : Json;
export type Res<K extends OpName> = K extends keyof OpTypes ? OpTypes[K]['res'] : Json;
