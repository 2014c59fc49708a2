/** Types for bundle-cache.mjs (plain JavaScript: it runs before any TypeScript loader). */
export declare const defaultCacheDir: string
export declare function cachedBundle(name: string, entries: Record<string, string>, where?: { root?: string; cacheDir?: string }): Promise<string>
export declare function gatewayBundle(): Promise<string>
